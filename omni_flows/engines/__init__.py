"""Execution engines: the same jobflow Flows run here, on FireWorks or on jobflow-remote.

- ``local``: jobflow ``run_locally`` against the platform's JobStore (default).
- ``fireworks``: a LaunchPad in the same MongoDB server; ``omni-flows worker`` runs it.
- ``remote``: jobflow-remote, the project configuration for a user's cluster.
"""

from enum import Enum


class Engine(str, Enum):
    LOCAL = "local"
    FIREWORKS = "fireworks"
    JOBFLOW_REMOTE = "jobflow-remote"
