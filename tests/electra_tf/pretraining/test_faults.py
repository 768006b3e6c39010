"""Fault injection: a pretraining run killed at each of its write points, then re-run.

Every write point of a tiny run (config, components, each TF2 checkpoint and its state
file updates, the TF1 copy's files and state file, an eval's results files) is a place a
real run can be killed. Each time, the re-run must finish with the model directory an
uninterrupted run leaves: no leftovers, no lock, the same final weights and results.
"""

import concurrent.futures
import json
import os
import re
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tests import faults
from tests.electra_tf.pretraining.test_trainer import _final_weights, data_dir

__all__ = ["data_dir"]  # the fixture

HPARAMS = dict(vocab_size=1024, max_seq_length=32, embedding_size=16, train_batch_size=4,
               eval_batch_size=4, learning_rate=1e-3, num_warmup_steps=0, num_train_steps=2,
               iterations_per_loop=1, save_checkpoints_steps=1, keep_checkpoint_max=1,
               num_eval_steps=1, generator_hidden_size=0.5, seed=3,
               model_hparam_overrides={"hidden_size": 16, "num_hidden_layers": 1,
                                       "num_attention_heads": 1, "intermediate_size": 32})


def _pretrain(data_dir, name, fault_at=0, **hparams):
    args = ["--data-dir", data_dir, "--model-name", name,
            "--hparams", json.dumps(dict(HPARAMS, **hparams))]
    return faults.run("electra_tf.run_pretraining", args,
                      data_dir / f"{name}-{fault_at}.points", fault_at)


def _fault_points(points):
    """1-based indices of the points that leave distinct states: every "before" (any
    "after" but the very last leaves what the next "before" sees), and of those that
    repeat with another step number after the same kind of point (the first checkpoint's
    state-file updates, say, are the second's without the rotation), only the last."""
    def kind(i):
        return re.sub(r"\d+", "N", points[i]) if i >= 0 else ""

    last = {(kind(i), kind(i - 1)): i + 1 for i, p in enumerate(points)
            if p.startswith("before ")}
    return sorted(last.values()) + [len(points)]


def _leftovers(model_dir):
    return [os.path.join(root, name) for root, dirs, names in os.walk(model_dir)
            for name in dirs + names if name.startswith((".tmp-", ".lock"))]


def _tensors(prefix):
    return {n: tf.train.load_variable(prefix, n) for n, _ in tf.train.list_variables(prefix)}


def _kill_and_rerun(data_dir, name, fault_at, **hparams):
    killed, _ = _pretrain(data_dir, name, fault_at, **hparams)
    assert killed.returncode == faults.EXIT_CODE, killed.stdout[-3000:]
    rerun, _ = _pretrain(data_dir, name, **hparams)
    return rerun


@pytest.fixture(scope="module")
def whole(data_dir):
    """The write points of an uninterrupted run of `models/whole`."""
    done, points = _pretrain(data_dir, "whole")
    assert done.returncode == 0, done.stdout[-3000:]
    return points


def test_a_run_killed_at_any_write_point_finishes_as_an_uninterrupted_one(data_dir, whole):
    points = whole
    kinds = {p.split()[1] for p in points}
    assert {"commit", "checkpoint", "state"} <= kinds, points
    assert any("original/model.ckpt-2.index" in p for p in points), points
    latest, reference = _final_weights(str(data_dir / "models/whole"))
    original = _tensors(str(data_dir / "models/whole/original/model.ckpt-2"))
    at = _fault_points(points)

    def scenario(fault_at):
        name = f"killed-{fault_at}"
        return name, _kill_and_rerun(data_dir, name, fault_at)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # two processes at a time
        for name, rerun in pool.map(scenario, at):
            where = f"killed at {points[int(name.split('-')[1]) - 1]!r}"
            assert rerun.returncode == 0, f"{where}:\n{rerun.stdout[-3000:]}"
            model_dir = data_dir / "models" / name
            assert not _leftovers(model_dir), where
            got_latest, got = _final_weights(str(model_dir))
            assert os.path.basename(got_latest) == os.path.basename(latest), where
            assert got.keys() == reference.keys(), where
            for key, value in reference.items():
                np.testing.assert_array_equal(got[key], value, err_msg=f"{where}: {key}")
            got_original = _tensors(str(model_dir / "original/model.ckpt-2"))
            assert got_original.keys() == original.keys(), where
            for key, value in original.items():
                np.testing.assert_array_equal(got_original[key], value, err_msg=f"{where}: {key}")
            # Only the newest checkpoint is kept, and the state file names it.
            assert sorted(n for n in os.listdir(model_dir) if n.endswith(".index")) == [
                "ckpt-2.index"], where


def test_an_eval_killed_while_writing_results_writes_them_on_rerun(data_dir, whole):
    evaluated, points = _pretrain(data_dir, "whole", do_train=False, do_eval=True)
    assert evaluated.returncode == 0, evaluated.stdout[-3000:]
    results_dir = data_dir / "models/whole/results"
    reference = json.loads((results_dir / "unsup_results.json").read_text())
    text = (results_dir / "unsup_results.txt").read_text()
    assert [p for p in points if "unsup_results" in p] == [p for p in points], points
    for fault_at in _fault_points(points):
        shutil.rmtree(results_dir)
        rerun = _kill_and_rerun(data_dir, "whole", fault_at, do_train=False, do_eval=True)
        assert rerun.returncode == 0, rerun.stdout[-3000:]
        assert json.loads((results_dir / "unsup_results.json").read_text()) == reference
        assert (results_dir / "unsup_results.txt").read_text() == text
        assert not _leftovers(data_dir / "models/whole")
