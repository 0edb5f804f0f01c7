"""User errors raised by the documents and query helpers.

``db_schemas`` imports no other part of omni-flows, so its errors have their own
base; the application treats :class:`SchemaError` like ``OmniFlowsError``
(one clear line, exit code 2).
"""


class SchemaError(ValueError):
    """A query or document a user wrote that cannot be used as it is."""
