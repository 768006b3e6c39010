"""Multi-worker faults: a worker killed mid-run, the whole job restarted, the same weights.

Two `MultiWorkerMirroredStrategy` workers run on 127.0.0.1 as separate processes (the
worker mode of `distributed_run.py`); an uninterrupted run of two workers is the
reference, and also the test that both workers train the same weights. In the faulty run a
worker is SIGKILLed at a known point (it stalls just before saving a checkpoint its peer
has saved); the survivor is left to stop on its own, as a cluster manager would see it;
then both workers are restarted on fresh ports. Every wait is bounded, so a hang fails the
test instead of blocking CI.

Measured on 2 cores: a survivor stops with `UnavailableError` 6-14 s after its peer's
SIGKILL (a reset connection, or the coordination service's missed heartbeats); a run of
the two workers is ~50 s of CPU, most of it start-up and tracing.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO
from tests.electra_tf.pretraining.test_trainer import _final_weights, _free_ports, data_dir

__all__ = ["data_dir"]  # the fixture

RUN = os.path.join(os.path.dirname(__file__), "distributed_run.py")
STEPS, SAVE_STEPS = 6, 2
# Start-up and tracing are most of a run: minutes when the two cores are shared.
START_TIMEOUT = 300
# How long a cluster manager would give the survivor before killing it (it stops in ~10 s).
SURVIVOR_TIMEOUT = 60


class Job:
    """The two worker processes of one attempt, their output in `<logs>/<name>-w<i>.log`.

    Args:
        data_dir: the data directory.
        model: the model name (`<data_dir>/models/<model>`).
        logs: the directory of the logs and of each worker's final weights (`.npz`).
        name: this attempt's name.
        stall: (worker index, "before" or "after", step): that worker stalls just before
            it saves `ckpt-<step>`, or once it has.
    """

    def __init__(self, data_dir, model, logs, name, stall=None):
        self.model_dir = data_dir / "models" / model
        self.logs = [logs / f"{name}-w{i}.log" for i in range(2)]
        self.weights = [logs / f"{name}-w{i}.npz" for i in range(2)]
        cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
        self.workers = []
        for index in range(2):
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}}))
            if stall and stall[0] == index:
                env["STALL_AT_CHECKPOINT"] = f"{stall[1]}:{stall[2]}"
            with open(self.logs[index], "w") as log:  # a file: no pipe to fill, kept on kill
                self.workers.append(subprocess.Popen(
                    [sys.executable, RUN, "worker", str(data_dir), str(self.weights[index]),
                     model, str(STEPS), str(SAVE_STEPS)],
                    cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT))

    def output(self, index):
        return self.logs[index].read_text()

    def state(self, index):
        """The worker's `checkpoint` state file ("" before the first checkpoint)."""
        path = self.model_dir / ("checkpoint" if index == 0 else f".worker-{index}/checkpoint")
        return path.read_text() if path.exists() else ""

    def wait_until(self, condition, what, timeout=START_TIMEOUT):
        deadline = time.time() + timeout
        while not condition():
            assert time.time() < deadline, f"no {what} after {timeout} s\n{self.outputs()}"
            assert all(w.poll() is None for w in self.workers), \
                f"a worker stopped\n{self.outputs()}"
            time.sleep(0.05)

    def finish(self, timeout=START_TIMEOUT):
        """Waits for both workers to end; returns their return codes."""
        deadline = time.time() + timeout
        for worker in self.workers:
            try:
                worker.wait(timeout=max(deadline - time.time(), 0.1))
            except subprocess.TimeoutExpired:
                self.kill()
                pytest.fail(f"the workers still ran after {timeout} s\n{self.outputs()}")
        return [w.returncode for w in self.workers]

    def kill(self):
        for worker in self.workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGKILL)
                worker.wait()

    def outputs(self):
        return "\n".join(f"--- worker {i}:\n{self.output(i)[-3000:]}" for i in range(2))


@pytest.fixture
def jobs():
    """Every `Job` a test starts is killed at its end, whatever happened."""
    started = []
    yield started
    for job in started:
        job.kill()


@pytest.fixture(scope="module")
def whole(data_dir, tmp_path_factory):
    """An uninterrupted two-worker run, started at once to run beside the first faults;
    `finish()` it before reading its results."""
    job = Job(data_dir, "whole", tmp_path_factory.mktemp("whole"), "whole")
    yield job
    job.kill()


def _same_final_weights(whole, job):
    """Both workers of `job` end with the weights of `whole`, bit for bit, and the
    checkpoints of both directories hold the same weights and Adam slots."""
    assert whole.finish() == [0, 0], whole.outputs()
    reference = np.load(whole.weights[0])
    for path in whole.weights[1:] + job.weights:
        values = np.load(path)
        assert set(values.files) == set(reference.files)
        for name in reference.files:
            np.testing.assert_array_equal(values[name], reference[name], err_msg=f"{path} {name}")
    for directory in ("", ".worker-1"):
        latest_a, a = _final_weights(str(whole.model_dir / directory))
        latest_b, b = _final_weights(str(job.model_dir / directory))
        assert latest_a.endswith(f"ckpt-{STEPS}") and latest_b.endswith(f"ckpt-{STEPS}")
        assert a.keys() == b.keys() and len(a) == 3 * 80  # weights, adam_m, adam_v
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{directory} {name}")


def _kill(job, victim, step, saved_by=(0, 1)):
    """Once the workers `saved_by` have saved `ckpt-<step>` and worker `victim` stalls,
    SIGKILLs the victim and waits for the survivor, blocked in the next step's collective,
    to stop on its own."""
    # The state files name the checkpoint (each worker saves its own).
    job.wait_until(lambda: all(f'"ckpt-{step}"' in job.state(i) for i in saved_by)
                   and "stalled" in job.output(victim), f"ckpt-{step} saved by {saved_by}")
    job.workers[victim].send_signal(signal.SIGKILL)
    killed = time.time()
    survivor = job.workers[1 - victim]
    try:
        survivor.wait(timeout=SURVIVOR_TIMEOUT)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"the survivor hung in a collective for {SURVIVOR_TIMEOUT} s\n"
                    f"{job.outputs()}")
    # Measured: 6-9 s, through a reset connection or the missed heartbeats of the victim.
    print(f"worker {1 - victim} stopped {time.time() - killed:.1f} s after worker {victim} "
          "was killed")
    assert job.finish() == [-signal.SIGKILL if i == victim else 1 for i in range(2)]
    assert "UnavailableError" in job.output(1 - victim)
    assert not (job.model_dir / f"ckpt-{step + SAVE_STEPS}.index").exists()
    return job.model_dir


def test_a_worker_killed_while_saving_and_the_restarted_job_end_as_an_uninterrupted_run(
        data_dir, tmp_path, jobs, whole):
    """The chief saves ckpt-4, the other worker dies just before saving its own; the chief
    stops by itself (releasing the lock); the restarted job resumes both workers from
    ckpt-2, the newest checkpoint every worker has, and ends with the uninterrupted run's
    weights on both workers."""
    killed = Job(data_dir, "saving", tmp_path, "killed", stall=(1, "before", 4))
    jobs.append(killed)
    model_dir = _kill(killed, victim=1, step=4, saved_by=(0,))
    assert '"ckpt-4"' not in killed.state(1)
    assert not (model_dir / ".lock").exists()
    restarted = Job(data_dir, "saving", tmp_path, "restarted")
    jobs.append(restarted)
    assert restarted.finish() == [0, 0], restarted.outputs()
    assert ("Resuming from step 2, the newest checkpoint every worker has (this worker also "
            "has ckpt-4)") in restarted.output(0)
    assert f"Resuming from {model_dir}/ckpt-2 at step 2" in restarted.output(0)
    assert f"Resuming from {model_dir}/.worker-1/ckpt-2 at step 2" in restarted.output(1)
    _same_final_weights(whole, restarted)
    # Each worker keeps its own data position beside the chief's checkpoints.
    assert (whole.model_dir / f".worker-1/ckpt-{STEPS}.index").exists()
