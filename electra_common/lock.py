"""One writer per directory: a lock file that names its holder.

A run that writes a model directory holds `<directory>/.lock`, a small JSON file with the
holder's pid, host, start time and command. A second run meets a `DirectoryLocked` error
that names the holder. A lock left by a process that no longer runs (killed, machine
rebooted) is taken over with a message; on another host nothing can be checked, so the
error says how to remove the lock by hand.

The file is created with `O_CREAT | O_EXCL`, which is atomic on local disks. Remote paths
(`gs://...`) have no such primitive: there the lock is written if absent, which catches a
forgotten second run but not two runs started in the same instant.
"""

import contextlib
import datetime
import json
import os
import socket
import sys

from electra_common import files

LOCK_FILE = ".lock"


class DirectoryLocked(OSError):
    """Another live process holds the directory's lock."""


def _start_time(pid):
    """The process' start time in clock ticks since boot (Linux), or None.

    With the pid it identifies a process even when the pid is later reused.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in ("Z", "X"):  # a zombie has finished running
        return "dead"
    return fields[19]


def _holder():
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "start": _start_time(os.getpid()),
            "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])}


def _describe(holder):
    return (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')} "
            f"({holder.get('command')})")


def _is_running(holder):
    """Whether the holder (on this host) still runs; None when that cannot be known."""
    if holder.get("host") != socket.gethostname():
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    start = _start_time(pid)
    if start == "dead":
        return False
    # The pid was reused by another process if its start time differs from the holder's.
    return start is None or holder.get("start") in (None, start)


def _read(path):
    try:
        with files.open_file(path) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None  # being written right now, or damaged: treated as held by nobody known


def _create(path, text):
    """Creates `path` with `text` unless it exists; returns whether it did."""
    if files.is_remote(path):
        if files.exists(path):
            return False
        files.write_text(path, text)
        return True
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return True


def acquire(directory, log=print):
    """Takes the lock of `directory` (created if missing).

    Args:
        directory: the directory one process at a time may write.
        log: receives the line saying a stale lock was taken over.
    Returns:
        The path of the lock file.
    Raises:
        DirectoryLocked: a running process, or one on another host, holds it.
    """
    files.makedirs(directory)
    path = os.path.join(directory, LOCK_FILE)
    me = _holder()
    for _ in range(3):  # a stale lock removed by us may be taken by a third run meanwhile
        if _create(path, json.dumps(me) + "\n"):
            return path
        holder = _read(path)
        if holder is None:
            raise DirectoryLocked(
                f"{path}: exists but cannot be read as a lock; if no other run writes "
                f"{directory}, delete {path}")
        running = _is_running(holder)
        if running:
            raise DirectoryLocked(
                f"{directory}: another run writes here: {_describe(holder)}; wait for it "
                "or stop it")
        if running is None:
            raise DirectoryLocked(
                f"{directory}: locked by {_describe(holder)}, which this host cannot check; "
                f"if that run is gone, delete {path}")
        log(f"Taking over the lock of {directory} from {_describe(holder)}, which no longer "
            "runs")
        files.remove(path)
    raise DirectoryLocked(f"{directory}: other runs keep taking the lock")


def release(path):
    """Removes the lock file at `path` if this process holds it."""
    holder = _read(path)
    if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        files.remove(path)


@contextlib.contextmanager
def hold(directory, log=print):
    """Holds the lock of `directory` for the duration of the block.

    Example:
    ```python
    from electra_common import lock

    with lock.hold("/tmp/electra_docs/locked"):
        pass  # a second `lock.hold` of the directory here raises DirectoryLocked
    ```
    """
    path = acquire(directory, log)
    try:
        yield path
    finally:
        release(path)
