"""Fault injection: a fine-tuning run killed at each of its write points (`tests/faults.py`)
and run again finishes with the outputs of an uninterrupted run, and leaves nothing half
written.

One uninterrupted run lists the write points (every atomic commit: record cache, model
directory and its files, results, test predictions; before and after each). A kill *after*
a commit leaves the same files as a kill *before* the next one, less that one's temporary,
so only the "before" points and the last "after" are used, and of those one per distinct
state that can change what the re-run does: which record caches are complete or half
written, and where a temporary was left: 7 points. Each costs two processes (~10 s of
TensorFlow start-up and tracing each); they run two at a time.
"""

import concurrent.futures
import json
import os
import re
import shutil

import h5py
import numpy as np
import tensorflow as tf

from tests import faults
from tests.conftest import FIXTURES
from tests.finetune.conftest import write

# The smallest run that writes everything: one random 1-layer encoder, 2 training steps,
# RTE dev scores and test-set predictions (JSON and the GLUE TSV).
HPARAMS = {"task_names": ["rte"], "init_checkpoint": None, "write_test_outputs": True,
           "vocab_size": 1024, "embedding_size": 16, "max_seq_length": 16,
           "model_hparam_overrides": {"hidden_size": 16, "intermediate_size": 32,
                                      "num_attention_heads": 2, "num_hidden_layers": 1},
           "train_batch_size": 4, "eval_batch_size": 4, "predict_batch_size": 4,
           "num_train_epochs": 1.0, "learning_rate": 1e-3, "seed": 1}
# The directories the run commits into (the rest is inside the model directory's temporary).
OUTPUT_DIRS = ("rte_tfrecords", "finetuning_models", "results", "test_predictions", "glue_1")


def make_data_dir(path):
    path.mkdir(parents=True)
    shutil.copy(FIXTURES / "vocab_tiny.txt", path / "vocab.txt")
    rte = ["index\tsentence1\tsentence2\tlabel"] + [
        f"{i}\tthe cat sat {i}\ta cat {'sat' if i % 2 else 'ran'}\t"
        f"{'entailment' if i % 2 else 'not_entailment'}" for i in range(8)]
    for split in ("train", "dev"):
        write(path / "finetuning_data" / "rte" / f"{split}.tsv", rte)
    write(path / "finetuning_data" / "rte" / "test.tsv", [r.rsplit("\t", 1)[0] for r in rte])
    return path


def run(data_dir, fault_at=0):
    return faults.run("finetune.run_finetuning",
                      ["--data-dir", data_dir, "--model-name", "tiny",
                       "--hparams", json.dumps(HPARAMS)],
                      data_dir / "points.txt", fault_at, timeout=300)


def scenarios(points):
    """{1-based point index: label}: one point per distinct state (see the docstring).

    A state is where the temporary lies (which cleanup the re-run needs) and whether a
    record cache is half written (records committed, metadata not); the splits' caches are
    written and checked by the same code, so one half-written cache stands for both. Of
    each state's points the middle one is taken: inside the model directory's temporary,
    that is a kill between the data and the index of its TF1 checkpoint.
    """
    groups, half_written = {}, None
    for index, label in enumerate(points, 1):
        kind, _, target = label.partition(" commit ")
        parent = target.split("/")[0]
        if kind == "after":
            if parent == "rte_tfrecords":
                half_written = None if target.endswith(".metadata") else target
            if index < len(points):
                continue
        temporary = None if kind == "after" else (
            parent if parent in OUTPUT_DIRS else "finetuning_models")
        groups.setdefault((half_written is not None, temporary), []).append(index)
    return {group[len(group) // 2]: points[group[len(group) // 2] - 1]
            for group in groups.values()}


def results(data_dir):
    """The results files, less what differs between runs: the data directory in paths,
    and the training time (a model a killed run saved keeps that run's time)."""
    model = data_dir / "models" / "tiny"
    found = json.loads((model / "results" / "rte_results.json").read_text().replace(
        str(data_dir), "<data_dir>"))
    for trial in found["trials"]:
        assert trial.pop("train_seconds") > 0 and trial.pop("finished_at")
    text = (model / "results" / "rte_results.txt").read_text().replace(str(data_dir), "D")
    return found, re.sub(r", trained in [^)]*\)", ")", text)


def outputs(data_dir):
    """What a finished run leaves that the next user reads: scores, predictions, weights."""
    model = data_dir / "models" / "tiny"
    trial = model / "finetuning_models" / "rte_model_1"
    found = dict(zip(("results", "results_txt"), results(data_dir)))
    found["predictions"] = (model / "test_predictions" / "rte_test_1_predictions.json").read_text()
    found["submission"] = (model / "test_predictions" / "glue_1" / "RTE.tsv").read_text()
    with h5py.File(trial / "model.weights.h5") as h5:  # (a callback returning None visits all)
        h5.visititems(lambda name, item: found.update({name: item[()]})
                      if isinstance(item, h5py.Dataset) else None)
    reader = tf.train.load_checkpoint(str(trial / "original"))
    for name in reader.get_variable_to_shape_map():
        found["original/" + name] = reader.get_tensor(name)
    return found


def leftovers(data_dir):
    return sorted(os.path.relpath(os.path.join(root, name), data_dir)
                  for root, dirs, names in os.walk(data_dir) for name in dirs + names
                  if name.startswith(".tmp-") or name == ".lock")


def kill_and_rerun(path, index):
    data_dir = make_data_dir(path)
    killed, _ = run(data_dir, index)
    again, _ = run(data_dir)
    return killed, again, data_dir


def test_a_run_killed_at_any_write_point_finishes_as_if_never_killed(tmp_path):
    reference_dir = make_data_dir(tmp_path / "reference")
    done, points = run(reference_dir)
    assert done.returncode == 0, done.stdout[-3000:]
    assert leftovers(reference_dir) == []
    expected = outputs(reference_dir)
    chosen = scenarios(points)
    assert len(chosen) == 7, chosen  # caches, model directory, results, predictions, the end
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {index: pool.submit(kill_and_rerun, tmp_path / f"fault_{index}", index)
                   for index in chosen}
    for index, future in futures.items():
        killed, again, data_dir = future.result()
        where = f"killed at point {index} ({chosen[index]})"
        assert killed.returncode == faults.EXIT_CODE, f"{where}:\n{killed.stdout[-3000:]}"
        assert again.returncode == 0, f"{where}, the re-run failed:\n{again.stdout[-3000:]}"
        assert "Taking over the lock" in again.stdout, where  # the killed run's lock
        assert leftovers(data_dir) == [], where
        found = outputs(data_dir)
        assert sorted(found) == sorted(expected), where
        for key, value in expected.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(found[key], value, err_msg=f"{where}: {key}")
            else:
                assert found[key] == value, f"{where}: {key}"
