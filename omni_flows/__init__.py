"""omni-flows: high-throughput adsorption screening around a multi-domain MLIP."""

import signal
import sys

# the command line, loading (seconds), with Ctrl-C not ignored (as in a background job)
if sys.argv and sys.argv[0].endswith("omni-flows") \
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler:

    def _interrupted_while_loading(signum, frame):
        """Ctrl-C before the command runs: its message and exit code, not a traceback
        (omni_flows.cli.run puts Python's handler back once loaded)."""
        sys.stderr.write("interrupted (Ctrl-C)\n")
        raise SystemExit(130)

    signal.signal(signal.SIGINT, _interrupted_while_loading)

from importlib.metadata import PackageNotFoundError, version  # noqa: E402

try:
    __version__ = version("omni-flows")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
