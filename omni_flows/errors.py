"""Errors of the application layer (database, engines) that a user can cause.

All derive from :class:`omni_flows.model.errors.OmniFlowsError`, so the CLI
prints them as one clear line instead of a traceback. :func:`user_error_message`
is the one rule for what counts as a user's mistake rather than a bug (a
traceback): the project's exception family, ``db_schemas``' own base, and a
MongoDB server that cannot be reached, refuses the credentials, or dies
mid-command. :func:`exit_code` says which of the two kinds it is (as in ASE):
bad input, raised before any compute (2), or a calculation that ran and failed (3).
"""

import sys

# a collection is db_schemas' concept; its error is re-exported here for the application
from omni_flows.db_schemas.errors import SchemaError, UnknownCollectionError  # noqa: F401
from omni_flows.model.errors import CalculationError, OmniFlowsError

# the errors a user can cause: the message says what is wrong and what to do
USER_ERRORS = (OmniFlowsError, SchemaError)
# exit codes of the CLI: bad input (as click's usage errors), a calculation that failed
EXIT_INPUT_ERROR = 2
EXIT_CALCULATION_FAILED = 3
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT
# MongoDB's error codes for a client without (valid) credentials
_AUTH_CODES = {13, 18}  # Unauthorized, AuthenticationFailed


class DatabaseUnavailableError(OmniFlowsError, ConnectionError):
    """The MongoDB server (local SecantusDB or a user's URI) cannot be reached."""


class DatabaseServerError(OmniFlowsError, RuntimeError):
    """The local database server could not be started, or stopped, as asked."""


class EngineError(OmniFlowsError, RuntimeError):
    """A workflow engine that is misconfigured or rejects a submission."""


class JobsFailedError(CalculationError, EngineError):
    """Jobs of a flow that ran and did not finish (a calculation error: the run started)."""


class InvalidFlowError(OmniFlowsError, ValueError):
    """A file that does not hold a serialized jobflow Flow or Job."""


class IndexConflictError(OmniFlowsError, RuntimeError):
    """An existing index on the same fields with other options (e.g. not unique)."""


class MigrationNeededError(OmniFlowsError, RuntimeError):
    """A database written by an earlier omni-flows: ``omni-flows db migrate`` brings it up."""


class InvalidSettingsError(OmniFlowsError, ValueError):
    """A setting from the environment or the config file that does not validate."""


class OutputPathError(OmniFlowsError, OSError):
    """A place to write results (``--out``, ``-o``) that cannot be written, found before any work."""


def _database_message(exc: BaseException) -> str | None:
    """What to tell a user whose MongoDB went away or refused them (None: not that case)."""
    if "pymongo" not in sys.modules:  # no client was ever made: not a database error
        return None
    from pymongo.errors import ConnectionFailure, OperationFailure

    # pymongo appends its whole topology description: keep the first clause
    detail = str(exc).split(", Timeout:")[0].split(", Topology Description:")[0]
    if isinstance(exc, ConnectionFailure):
        return (
            f"lost the connection to MongoDB ({detail}); is the server running? "
            "`omni-flows db status` says where it is, `omni-flows db start` starts the "
            "local one; check OMNI_FLOWS_MONGODB_URI if you set one. Run the command again "
            "once it answers: finished jobs are kept."
        )
    if isinstance(exc, OperationFailure) and exc.code in _AUTH_CODES:
        return (
            f"MongoDB refused the credentials ({detail}); the local server's are in "
            "<home>/db/credentials.json, a URI's in OMNI_FLOWS_MONGODB_URI"
        )
    return None


def user_error_message(exc: BaseException) -> str | None:
    """The one-line message for a user's mistake, or None for a bug (show its traceback)."""
    if isinstance(exc, USER_ERRORS):
        return str(exc)
    return _database_message(exc)


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for an error that :func:`user_error_message` accepts."""
    return EXIT_CALCULATION_FAILED if isinstance(exc, CalculationError) else EXIT_INPUT_ERROR


def keyboard_interrupt(exc: BaseException | None) -> KeyboardInterrupt | None:
    """The Ctrl-C behind an exception (typer turns it into a silent exit 130), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
