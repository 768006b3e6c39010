"""Runs a command-line module and dies at its Nth write point, as a killed run would.

    python -m tests.faults POINTS_FILE FAULT_AT MODULE [ARGS...]

Write points are the moments a run changes its output directory: every
`electra_common.files.commit` (the project's one atomic rename), every TF2 checkpoint
write (`tf.train.Checkpoint` data and index) and every update of a `checkpoint` state
file, each just before and just after it happens. Each point reached is appended to
POINTS_FILE as a line; at point number FAULT_AT (counting from 1; 0 = never) the process
ends with `os._exit(137)`, skipping every `finally` and exit handler, as a SIGKILL would.
"""

import os
import runpy
import sys

EXIT_CODE = 137  # what a shell reports for SIGKILL


class _Points:
    def __init__(self, path, fault_at):
        self.path, self.fault_at, self.count = path, fault_at, 0

    def reach(self, label):
        self.count += 1
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(label + "\n")
        if self.count == self.fault_at:
            os._exit(EXIT_CODE)

    def wrap(self, owner, name, describe):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            label = describe(*args, **kwargs)
            self.reach(f"before {label}")
            result = original(*args, **kwargs)
            self.reach(f"after {label}")
            return result

        setattr(owner, name, wrapper)


def _short(path):
    return os.path.join(os.path.basename(os.path.dirname(str(path))), os.path.basename(str(path)))


def install(points_file, fault_at):
    """Wraps the write functions; returns the `_Points` counter."""
    from electra_common import files  # noqa: PLC0415
    from tensorflow.python.checkpoint import checkpoint as tf_checkpoint  # noqa: PLC0415
    from tensorflow.python.checkpoint import checkpoint_management  # noqa: PLC0415

    points = _Points(points_file, fault_at)
    points.wrap(files, "commit", lambda source, target, *a, **k: f"commit {_short(target)}")
    # The private names are TF's own write path (CheckpointManager.save calls `_write`);
    # test-only code, so that a fault can land between a checkpoint and its state file.
    points.wrap(tf_checkpoint.Checkpoint, "_write",
                lambda self, prefix, *a, **k: f"checkpoint {_short(prefix)}")
    points.wrap(checkpoint_management, "update_checkpoint_state_internal",
                lambda save_dir, *a, **k: f"state file {_short(os.path.join(save_dir, 'checkpoint'))}")
    return points


def run(module, args, points_file, fault_at=0, timeout=600, env=None):
    """Runs `python -m module args` under `install` in a fresh process.

    Returns:
        (`subprocess.CompletedProcess` with the combined output as `stdout`, the list of
        write points reached).
    """
    import subprocess  # noqa: PLC0415

    if os.path.exists(points_file):
        os.remove(points_file)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults", str(points_file), str(fault_at), module,
         *map(str, args)], cwd=repo, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=timeout)
    points = []
    if os.path.exists(points_file):
        with open(points_file, encoding="utf-8") as f:
            points = f.read().splitlines()
    return done, points


def main(argv):
    points_file, fault_at, module = argv[1], int(argv[2]), argv[3]
    install(points_file, fault_at)
    sys.argv = [module] + argv[4:]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
