"""omni-flows: high-throughput adsorption screening around a multi-domain MLIP."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("omni-flows")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
