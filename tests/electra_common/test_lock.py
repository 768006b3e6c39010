import json
import os
import socket
import subprocess
import sys

import pytest

from electra_common import lock


def _plant(directory, **holder):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, lock.LOCK_FILE), "w") as f:
        json.dump(dict({"host": socket.gethostname(), "since": "then", "command": "x"},
                       **holder), f)


def test_second_holder_is_refused_with_the_holder_named(tmp_path):
    with lock.hold(str(tmp_path)) as path:
        assert json.load(open(path))["pid"] == os.getpid()
        with pytest.raises(lock.DirectoryLocked, match=f"pid {os.getpid()} on "):
            lock.acquire(str(tmp_path))
    assert not os.path.exists(path)  # released
    lock.release(lock.acquire(str(tmp_path)))  # and free again


def test_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    _plant(tmp_path, pid=int(dead.stdout))
    lines = []
    path = lock.acquire(str(tmp_path), log=lines.append)
    assert json.load(open(path))["pid"] == os.getpid()
    assert len(lines) == 1 and f"pid {int(dead.stdout)}" in lines[0]
    assert "no longer runs" in lines[0]


def test_reused_pid_is_not_the_holder(tmp_path):
    # Our own pid, but with another start time: the pid was reused.
    _plant(tmp_path, pid=os.getpid(), start="1")
    lines = []
    lock.acquire(str(tmp_path), log=lines.append)
    assert lines


def test_lock_from_another_host_is_an_error_saying_how_to_remove_it(tmp_path):
    _plant(tmp_path, pid=1, host="elsewhere")
    with pytest.raises(lock.DirectoryLocked, match="elsewhere.*delete .*\\.lock"):
        lock.acquire(str(tmp_path))


def test_release_leaves_another_holders_lock(tmp_path):
    _plant(tmp_path, pid=1)
    lock.release(os.path.join(tmp_path, lock.LOCK_FILE))
    assert os.path.exists(os.path.join(tmp_path, lock.LOCK_FILE))


def test_unreadable_lock_is_an_error(tmp_path):
    (tmp_path / lock.LOCK_FILE).write_text("{half")
    with pytest.raises(lock.DirectoryLocked, match="cannot be read"):
        lock.acquire(str(tmp_path))
