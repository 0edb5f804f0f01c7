"""Errors of the application layer (database, engines) that a user can cause.

All derive from :class:`omni_flows.model.errors.OmniFlowsError`, so the CLI
prints them as one clear line instead of a traceback.
"""

from omni_flows.model.errors import OmniFlowsError


class DatabaseUnavailableError(OmniFlowsError, ConnectionError):
    """The MongoDB server (local SecantusDB or a user's URI) cannot be reached."""


class DatabaseServerError(OmniFlowsError, RuntimeError):
    """The local database server could not be started, or stopped, as asked."""


class UnknownCollectionError(OmniFlowsError, KeyError):
    """A collection name that is neither a result collection nor in the database."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class EngineError(OmniFlowsError, RuntimeError):
    """A workflow engine that is misconfigured or rejects a submission."""


class InvalidFlowError(OmniFlowsError, ValueError):
    """A file that does not hold a serialized jobflow Flow or Job."""


class IndexConflictError(OmniFlowsError, RuntimeError):
    """An existing index on the same fields with other options (e.g. not unique)."""


class InvalidSettingsError(OmniFlowsError, ValueError):
    """A setting from the environment or the config file that does not validate."""
