"""Files that are either whole or absent: the project's one atomic-write helper.

Every writer of the project goes through `atomic_path`: the content is written beside its
target under a hidden temporary name (`.tmp-<target name>-<random>`), flushed to disk, and
renamed into place. On a local disk a reader sees the old content or the new, never half of
it; a killed writer leaves only a `.tmp-*` entry, which `remove_leftovers` deletes. Other
paths (`gs://...`) go through `tf.io.gfile`, imported only then; there a directory rename
copies object by object, so the guarantee holds per file only.
"""

import contextlib
import json
import os
import shutil
import uuid

# The one temporary naming scheme: `<parent>/.tmp-<target name>-<8 hex digits>`.
TMP_PREFIX = ".tmp-"
# A directory being replaced is first moved to `.tmp-<name>-old-<8 hex digits>`: if the
# writer dies before the new one is in place, `remove_leftovers` moves it back.
_OLD = "-old-"


def is_remote(path):
    """Whether `path` names a file system other than the local one (`gs://`, ...)."""
    return "://" in str(path)


def _gfile():
    import tensorflow as tf  # noqa: PLC0415 (only for remote paths)
    return tf.io.gfile


def exists(path):
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def makedirs(path):
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def remove(path):
    """Deletes a file or a directory tree; nothing if it does not exist."""
    if is_remote(path):
        if _gfile().isdir(path):
            _gfile().rmtree(path)
        elif _gfile().exists(path):
            _gfile().remove(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def open_file(path, mode="r"):
    """`open` for local paths, `tf.io.gfile.GFile` otherwise."""
    if is_remote(path):
        return _gfile().GFile(path, mode)
    return open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"}))


def _fsync_tree(path):
    """Flushes a local file, or every file and directory under a local directory."""
    if os.path.isdir(path):
        for root, _, names in os.walk(path):
            for name in names:
                _fsync_tree(os.path.join(root, name))
            _fsync_dir(root)
    else:
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # not every platform opens directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_path(target, kind=""):
    """A fresh hidden name beside `target` (nothing is created)."""
    parent, name = os.path.split(str(target).rstrip("/"))
    return os.path.join(parent, f"{TMP_PREFIX}{name}{kind or '-'}{uuid.uuid4().hex[:8]}")


def commit(source, target, overwrite=False):
    """Moves a finished file or directory `source` to `target`, durably.

    Args:
        source: what was written (normally under `temporary_path(target)`).
        target: its final name.
        overwrite: replace an existing `target` (a directory is swapped out, then
            deleted); otherwise an existing target raises `FileExistsError`.
    """
    if exists(target) and not overwrite:
        raise FileExistsError(f"{target}: exists already")
    if is_remote(target):
        if overwrite and _gfile().isdir(target):
            remove(target)
        _gfile().rename(source, target, overwrite=overwrite)
        return
    _fsync_tree(source)
    if overwrite and os.path.isdir(target):
        old = temporary_path(target, _OLD)
        os.rename(target, old)
        os.rename(source, target)
        remove(old)
    else:
        os.replace(source, target)
    _fsync_dir(os.path.dirname(os.path.abspath(target)))


@contextlib.contextmanager
def atomic_path(target, overwrite=False):
    """Yields a temporary path beside `target`; on success it becomes `target`.

    Write a file or a whole directory at the yielded path. If the block raises, nothing
    is renamed and the temporary is deleted, so `target` keeps its old content (or stays
    absent).

    Args:
        target: the final file or directory.
        overwrite: allow replacing an existing `target`; otherwise `FileExistsError`.

    Example:
    ```python
    with atomic_path("/tmp/electra_docs/out.txt", overwrite=True) as tmp:
        with open(tmp, "w") as f:
            f.write("complete or absent\\n")
    ```
    """
    if exists(target) and not overwrite:
        raise FileExistsError(f"{target}: exists already")
    makedirs(os.path.dirname(str(target).rstrip("/")) or ".")
    tmp = temporary_path(target)
    try:
        yield tmp
        commit(tmp, target, overwrite)
    finally:
        try:
            remove(tmp)
        except OSError:  # cleaning up must not hide what went wrong in the block
            pass


def write_text(path, text, overwrite=True):
    """Writes `text` to `path` atomically."""
    with atomic_path(path, overwrite) as tmp:
        with open_file(tmp, "w") as f:
            f.write(text)
    return path


def write_json(path, value, overwrite=True, **dump_kwargs):
    """Writes `value` as JSON (indent 1, a final newline) to `path` atomically."""
    dump_kwargs.setdefault("indent", 1)
    return write_text(path, json.dumps(value, **dump_kwargs) + "\n", overwrite)


def read_json(path):
    """Reads a JSON file; a missing or invalid file is an error that names it."""
    if not exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open_file(path) as f:
        text = f.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON: {e}") from None


def remove_leftovers(directory, targets=None):
    """Cleans up after writers killed in `directory`: deletes their `.tmp-*` entries, and
    moves back a directory that was being replaced when its new version never arrived.

    Call it only where no other process is writing into `directory` at the same time, or
    name the `targets` (names, or name prefixes, in `directory`) whose leftovers are yours.
    Returns:
        The names removed (or restored).
    """
    if not exists(directory):
        return []
    names = (_gfile().listdir(directory) if is_remote(directory)
             else os.listdir(directory))
    prefixes = tuple(TMP_PREFIX + t for t in targets) if targets is not None else TMP_PREFIX
    leftovers = sorted(n.rstrip("/") for n in names if n.startswith(prefixes))
    for name in leftovers:
        path = os.path.join(directory, name)
        original = name[len(TMP_PREFIX):].rsplit(_OLD, 1)[0] if _OLD in name else None
        if original and not exists(os.path.join(directory, original)):
            os.rename(path, os.path.join(directory, original))
        else:
            remove(path)
    return leftovers
