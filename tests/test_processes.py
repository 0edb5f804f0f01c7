"""``pid_alive``: the one liveness rule of the database server and the engines.

Reference: the kernel, through real processes. A process of another user answers
``kill(pid, 0)`` with EPERM: it exists, so it is alive (root runs the check as a third
user in a forked child).
"""

import os
import subprocess
import time

import pytest

from omni_flows.processes import pid_alive

NOBODY = 65534


def alive_as_another_user(pid: int) -> bool:
    """``pid_alive(pid)`` asked by a forked child that runs as uid 65533."""
    child = os.fork()
    if child == 0:  # the child: drop to a third user, ask, answer by exit code
        code = 3
        try:
            os.setgid(65533)
            os.setuid(65533)
            code = 0 if pid_alive(pid) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 1), f"the check as another user failed (exit {code})"
    return code == 0


def test_a_running_child_is_alive_and_a_finished_one_is_dead_and_reaped():
    proc = subprocess.Popen(["sleep", "30"])
    assert pid_alive(proc.pid)
    proc.kill()
    time.sleep(0.2)  # a zombie now: dead, and pid_alive reaps it
    assert not pid_alive(proc.pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(proc.pid, os.WNOHANG)  # already reaped


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as two other users")
def test_a_process_of_another_user_is_alive():
    proc = subprocess.Popen(["sleep", "30"], user=NOBODY, group=NOBODY)
    try:
        assert alive_as_another_user(proc.pid)  # EPERM: it exists
    finally:
        proc.kill()
        proc.wait()
    assert not alive_as_another_user(proc.pid)  # gone: ESRCH
