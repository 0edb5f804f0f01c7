"""User errors raised by the documents and query helpers.

``db_schemas`` imports no other part of omni-flows, so its errors have their own
base; the application treats :class:`SchemaError` like ``OmniFlowsError``
(one clear line, exit code 2).
"""


class SchemaError(ValueError):
    """A query or document a user wrote that cannot be used as it is."""


class UnknownCollectionError(SchemaError, KeyError):
    """A collection name that is neither a result collection nor in the database."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""
