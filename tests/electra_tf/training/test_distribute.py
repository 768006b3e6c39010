"""`electra_tf.training.distribute`: which strategy a config names and what goes wrong, and
a two-worker pretraining run equal to one device on the same global batches.

(MirroredStrategy on 2 logical CPUs against one device: `test_mirrored_equals_one_device`
in tests/electra_tf/pretraining/test_trainer.py.)
"""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.training import distribute
from tests.conftest import REPO
from tests.electra_tf.pretraining.test_trainer import _free_ports, data_dir

__all__ = ["data_dir"]  # the fixture

RUN = REPO / "tests" / "electra_tf" / "pretraining" / "distributed_run.py"
STEPS = 2
TIMEOUT = 600  # start-up and tracing on two shared cores


def config(**hparams):
    return PretrainingConfig("m", "/data", **hparams)


def test_default_and_mirrored():
    assert distribute.get_strategy(config()) is tf.distribute.get_strategy()
    assert isinstance(distribute.get_strategy(config(strategy="mirrored")),
                      tf.distribute.MirroredStrategy)


def test_multi_worker_reads_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="reads the cluster from the TF_CONFIG environment "
                                         "variable, which is not set"):
        distribute.get_strategy(config(strategy="multi_worker"))
    made = []
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["h:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy",
                        lambda: made.append(os.environ["TF_CONFIG"]) or "multi-worker")
    assert distribute.get_strategy(config(strategy="multi_worker")) == "multi-worker"
    assert len(made) == 1


def test_an_unknown_strategy_is_an_error():
    fields = dict(use_tpu=False, strategy="horovod", tpu_name=None, tpu_zone=None,
                  gcp_project=None)
    with pytest.raises(ValueError, match="unknown strategy 'horovod'"):
        distribute.get_strategy(types.SimpleNamespace(**fields))


class FakeTPU:
    """Stands in for the TPU calls of `get_strategy`: records them, fails where told."""

    def __init__(self, monkeypatch, fail_at=None, error=None):
        self.calls = []
        self.fail_at, self.error = fail_at, error
        test = self

        class Resolver:
            def __init__(self, **kwargs):
                test.record("resolve", kwargs)

            def master(self):
                return "grpc://10.1.2.3:8470"

        monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", Resolver)
        monkeypatch.setattr(tf.config, "experimental_connect_to_cluster",
                            lambda resolver: self.record("connect", resolver))
        monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system",
                            lambda resolver: self.record("initialize", resolver))
        monkeypatch.setattr(tf.distribute, "TPUStrategy",
                            lambda resolver: self.record("strategy", resolver) or "tpu")

    def record(self, name, argument):
        self.calls.append((name, argument))
        if name == self.fail_at:
            raise self.error


@pytest.mark.parametrize("hparams", [dict(use_tpu=True), dict(strategy="tpu")])
def test_tpu_gets_the_name_zone_and_project(monkeypatch, hparams):
    tpu = FakeTPU(monkeypatch)
    strategy = distribute.get_strategy(config(tpu_name="my-tpu", tpu_zone="europe-west4-a",
                                              gcp_project="my-project", **hparams))
    assert strategy == "tpu"
    assert [name for name, _ in tpu.calls] == ["resolve", "connect", "initialize", "strategy"]
    assert tpu.calls[0][1] == {"tpu": "my-tpu", "zone": "europe-west4-a",
                               "project": "my-project"}
    resolver = tpu.calls[1][1]
    assert all(argument is resolver for _, argument in tpu.calls[1:])


def test_a_tpu_that_cannot_be_located(monkeypatch):
    # What TPUClusterResolver raises without a name outside Google Cloud.
    FakeTPU(monkeypatch, "resolve", ValueError("Please provide a TPU Name to connect to."))
    with pytest.raises(ValueError, match=r"strategy 'tpu' cannot locate the TPU \(tpu_name="
                                         r"None, tpu_zone=None, gcp_project=None\): Please "
                                         r"provide a TPU Name.*'local' on a TPU VM"):
        distribute.get_strategy(config(use_tpu=True))


def test_an_unreachable_tpu(monkeypatch):
    FakeTPU(monkeypatch, "initialize", tf.errors.UnavailableError(
        None, None, "failed to connect to all addresses"))
    with pytest.raises(ConnectionError, match=r"strategy 'tpu' cannot reach the TPU at "
                                              r"grpc://10.1.2.3:8470 \(tpu_name='my-tpu', "
                                              r"tpu_zone='z', gcp_project='p'\): failed to "
                                              r"connect to all addresses"):
        distribute.get_strategy(config(use_tpu=True, tpu_name="my-tpu", tpu_zone="z",
                                       gcp_project="p"))


def _start(args, log, **env):
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, str(RUN), *map(str, args)], cwd=REPO,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **env),
                                stdout=out, stderr=subprocess.STDOUT)


def _wait(processes):
    try:
        for process in processes:
            process.wait(timeout=TIMEOUT)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_two_workers_equal_one_device_on_the_same_global_batches(data_dir, tmp_path):
    """Two MultiWorkerMirrored workers (processes on 127.0.0.1) train `STEPS` steps; one
    device trains on the same global batches, each worker's half with its seeds."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = [_start(["worker", data_dir, tmp_path / f"w{i}.npz", "two-workers", STEPS],
                      tmp_path / f"w{i}.log", TF_CONFIG=json.dumps(
                          {"cluster": cluster, "task": {"type": "worker", "index": i}}))
               for i in range(2)]
    _wait(workers)
    # Afterwards: a third process competing for the CPU could delay a worker's heartbeats.
    reference = _start(["two_workers_on_one", data_dir, tmp_path / "one.npz", "one-device",
                        STEPS], tmp_path / "one.log")
    _wait([reference])
    processes = workers + [reference]
    logs = "\n".join(f"--- {p.name}:\n{p.read_text()[-3000:]}"
                     for p in sorted(tmp_path.glob("*.log")))
    assert [p.returncode for p in processes] == [0, 0, 0], logs
    one = np.load(tmp_path / "one.npz")
    weights = [np.load(tmp_path / f"w{i}.npz") for i in range(2)]
    assert sorted(weights[0].files) == sorted(one.files) and len(one.files) == 80
    for name in one.files:
        # The all-reduce adds the two halves' gradients in another order (float32
        # rounding); Adam passes a near-zero entry's rounding to its update undamped:
        # updates agree to 1e-4 of the learning rate (1e-3).
        np.testing.assert_allclose(weights[0][name], one[name], rtol=1e-5, atol=1e-7,
                                   err_msg=name)
        np.testing.assert_array_equal(weights[1][name], weights[0][name], err_msg=name)
