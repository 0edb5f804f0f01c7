"""Whether a process still runs: the one rule for the database server and the engines."""

import os


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` runs; a zombie child of this process counts as dead (and is reaped).

    ``os.kill(pid, 0)`` raising PermissionError means the process exists but belongs to
    another user: it runs. Whether it is the process one means (a pid can be reused) is the
    caller's question, e.g. by its command line.
    """
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:  # not our child: ask the kernel
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True
