"""Whole runs: the original tiny checkpoint fine-tuned on two tiny tasks, then scored; trials,
model directories kept or replaced; one run at a time; one device, MirroredStrategy and two
workers agree."""

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from electra_tf import checkpoints
from finetune import config as config_lib
from finetune import model_dir
from finetune.config import FinetuningConfig
from finetune.trials import run_finetuning
from tests.conftest import FIXTURES, REPO
from tests.finetune.conftest import TINY, TINY_CHECKPOINT, write

DISTRIBUTED = REPO / "tests" / "finetune" / "distributed_finetune.py"


def test_two_tasks_from_the_original_tiny_checkpoint(data_dir):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte", "sts"],
                              write_test_outputs=True, init_checkpoint=TINY_CHECKPOINT, **TINY)
    results = run_finetuning(config)
    assert set(results[0]) == {"rte", "sts"}
    assert set(results[0]["sts"]) == {"pearson", "spearman", "mse", "loss"}
    assert set(results[0]["rte"]) == {"accuracy", "loss"}  # values: test_run_finetuning.py
    saved = json.loads(open(config.results_json).read())
    assert [t["metrics"] for t in saved["trials"]] == json.loads(json.dumps(results))
    assert saved["summary"]["rte"]["accuracy"]["std"] == 0.0  # one trial
    assert open(config.results_txt).read().splitlines()[1].startswith("rte: accuracy: ")
    rte_tsv = (data_dir / "models/tiny/test_predictions/glue_1/RTE.tsv").read_text().split("\n")
    assert rte_tsv[0] == "index\tprediction" and len(rte_tsv) == 8
    assert rte_tsv[1].split("\t")[1] in ("entailment", "not_entailment")
    sts = json.loads(open(config.test_predictions("sts", "test", 1)).read())
    assert sorted(sts) == [str(i) for i in range(5)]
    # Re-evaluating the saved model (do_train false) gives the same numbers.
    again = run_finetuning(FinetuningConfig(
        "tiny", str(data_dir), task_names=["rte", "sts"], do_train=False, **TINY))
    np.testing.assert_allclose(again[0]["sts"]["loss"], results[0]["sts"]["loss"], rtol=1e-5)


def test_keep_all_models_false_keeps_only_the_last(data_dir):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], num_trials=2,
                              keep_all_models=False, do_eval=False, **dict(
                                  TINY, num_train_epochs=1.0, init_checkpoint=None))
    run_finetuning(config)
    assert not os.path.exists(config.model_dir + "_1")
    assert os.path.exists(config.model_dir + "_2/" + model_dir.WEIGHTS_FILE)
    assert os.listdir(os.path.dirname(config.model_dir)) == ["rte_model_2"]  # lock released


def test_foreign_files_in_a_model_dir_stop_the_run_before_training(data_dir):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], do_eval=False,
                              **dict(TINY, init_checkpoint=None))
    os.makedirs(config.model_dir + "_1")
    open(config.model_dir + "_1/notes.txt", "w").write("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        run_finetuning(config)
    assert open(config.model_dir + "_1/notes.txt").read() == "mine"


def weights_of(trial_dir):
    found = {}
    with h5py.File(os.path.join(trial_dir, model_dir.WEIGHTS_FILE)) as h5:
        h5.visititems(lambda name, item: found.update({name: item[()]})
                      if isinstance(item, h5py.Dataset) else None)
    return found


def test_without_architecture_hparams_the_run_repeats_the_one_that_gives_them(data_dir,
                                                                               capsys):
    kwargs = json.loads((FIXTURES / "original-tiny" / "config.json").read_text())[
        "pretraining_config_kwargs"]
    pretrained = str(data_dir / "models" / "tiny")
    checkpoints.convert_from_original(TINY_CHECKPOINT, pretrained,
                                      checkpoints.config_for_dir(pretrained, kwargs))
    training = {k: v for k, v in TINY.items() if k not in config_lib.ARCHITECTURE}
    bare = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], **training)
    assert f"architecture: from {pretrained}/config.json" in bare.architecture_line()
    given = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], **TINY,
                             model_dir=str(data_dir / "given" / "rte_model"))
    assert bare.to_dict() == dict(given.to_dict(), model_dir=bare.model_dir)
    assert run_finetuning(bare) == run_finetuning(given)
    a, b = weights_of(bare.model_dir + "_1"), weights_of(given.model_dir + "_1")
    assert sorted(a) == sorted(b) and len(a) > 10
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert f"architecture: from {pretrained}/config.json" in capsys.readouterr().out


def test_a_rerun_evaluates_the_trials_it_finds_and_trains_the_others(data_dir, capsys):
    from matplotlib import image

    from electra_tf.training import curves

    hparams = dict(TINY, task_names=["rte"], init_checkpoint=None)
    config = FinetuningConfig("tiny", str(data_dir), **hparams)
    first = config.model_dir + "_1"
    os.makedirs(f"{first}/train")  # a killed run's TensorBoard scalars: trained again
    open(f"{first}/train/events.out.tfevents.0.stale", "w").write("")
    results = run_finetuning(config)
    out = capsys.readouterr().out
    assert f"trial 1: seed 2, training into {first}" in out
    assert "hparams other than the defaults (all of them: the results JSON): {" in out
    assert f"TensorBoard: tensorboard --logdir {os.path.dirname(first)}\n" in out
    assert f"learning curves: {first}/learning_curves.png" in out
    assert "stale" not in " ".join(os.listdir(f"{first}/train"))
    # Results: per trial its directory, step and time; the hparams once.
    saved = json.loads(open(config.results_json).read())
    assert saved["hparams"] == json.loads(json.dumps(config.to_dict()))
    trial = saved["trials"][0]
    assert (trial["trial"], trial["model_dir"], trial["global_step"]) == (1, first, 4)
    assert trial["train_seconds"] > 0 and trial["metrics"] == results[0]
    assert datetime.datetime.fromisoformat(trial["finished_at"]).utcoffset().seconds == 0
    assert open(config.results_txt).read().startswith(
        f"trial 1: {first} (step 4, trained in ")
    # TensorBoard: training's loss and learning rate, the dev metrics at the last step.
    dev = curves.read_scalars(f"{first}/eval")
    assert dev["accuracy"] == ([4], [pytest.approx(results[0]["rte"]["accuracy"])])
    assert dev["loss"] == ([4], [pytest.approx(results[0]["rte"]["loss"])])
    assert {"loss", "learning_rate"} <= set(curves.read_scalars(f"{first}/train"))
    assert image.imread(f"{first}/learning_curves.png").shape[2] in (3, 4)
    weights = open(f"{first}/{model_dir.WEIGHTS_FILE}", "rb").read()
    # Again with two trials: trial 1 is evaluated, not trained again; trial 2 is trained.
    again = run_finetuning(FinetuningConfig("tiny", str(data_dir), num_trials=2, **hparams))
    out = capsys.readouterr().out
    assert (f"trial 1: {first} was trained at {trial['finished_at']} (step 4); evaluating "
            "it. Delete it to train it again") in out
    assert "trial 1: seed" not in out and "trial 2: seed 3, training into" in out
    assert again[0] == results[0] and len(again) == 2
    assert open(f"{first}/{model_dir.WEIGHTS_FILE}", "rb").read() == weights
    saved = json.loads(open(config.results_json).read())
    assert [t["finished_at"] for t in saved["trials"]][0] == trial["finished_at"]
    assert curves.read_scalars(f"{first}/eval")["accuracy"][0] == [4]  # replaced, not added
    # A trial trained with other hparams is not evaluated as if it were this run's.
    with pytest.raises(ValueError, match="rte_model_1 was trained with other hparams "
                                         "\\(learning_rate 0.001 then, 0.002 now\\)"):
        run_finetuning(FinetuningConfig("tiny", str(data_dir), **dict(hparams,
                                                                        learning_rate=2e-3)))


HOLD = """
import sys
from electra_common import lock
with lock.hold(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_run_on_the_models_directory_is_refused(data_dir):
    from electra_common.lock import DirectoryLocked

    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], **TINY)
    models = os.path.dirname(config.model_dir)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, models], cwd=REPO, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DirectoryLocked, match=f"{models}: another run writes here: pid "
                                                  f"{holder.pid} on "):
            run_finetuning(config)
    finally:
        holder.communicate("", timeout=60)
    assert not os.path.exists(config.model_dir + "_1")  # refused before writing anything
    assert not os.path.exists(config.preprocessed_data_dir)


CHUNK = [f"{w} X {t}" for w, t in zip("the cat sat on a mat".split(),
                                       "B-NP E-NP S-VP O B-NP E-NP".split())] + [""] + [
    f"{w} X {t}" for w, t in zip("a dog ran".split(), "B-NP E-NP S-VP".split())] + [""] + [
    "cats X S-NP", "sat X S-VP", ""] + ["dogs X S-NP", "ran X S-VP", ""]


@pytest.fixture(scope="module")
def distributed(tmp_path_factory):
    """Chunking data, and the one-device vs MirroredStrategy report of a fresh process."""
    path = tmp_path_factory.mktemp("distributed")
    for split in ("train", "dev"):
        write(path / "finetuning_data" / "chunk" / f"{split}.txt", CHUNK)
    shutil.copy(FIXTURES / "vocab_tiny.txt", path / "vocab.txt")
    out = path / "mirrored.json"
    run = subprocess.run([sys.executable, str(DISTRIBUTED), "mirrored", str(path), str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return path, json.loads(out.read_text())


def assert_same_run(a, b, atol=1e-5):
    assert sorted(a["weights"]) == sorted(b["weights"])
    for name in a["weights"]:
        np.testing.assert_allclose(b["weights"][name], a["weights"][name], atol=atol,
                                   err_msg=name)
    for metric, value in a["results"][0]["chunk"].items():
        np.testing.assert_allclose(b["results"][0]["chunk"][metric], value, atol=1e-4)


def test_mirrored_strategy_equals_one_device(distributed):
    _, report = distributed
    assert report["mirrored"]["replicas"] == 2
    assert_same_run(report["one"], report["mirrored"])


def test_multi_worker_two_processes_equal_one_device(distributed, tmp_path):
    path, report = distributed
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    workers = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        workers.append(subprocess.Popen(
            [sys.executable, str(DISTRIBUTED), "worker", str(path),
             str(tmp_path / f"{index}.json")],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), "\n".join(o[-3000:] for o in outputs)
    runs = [json.loads((tmp_path / f"{i}.json").read_text())["worker"] for i in range(2)]
    assert runs[0]["replicas"] == 2
    assert_same_run(report["one"], runs[0])
    assert_same_run(runs[0], runs[1], atol=0)
    models = path / "models" / "multi" / "finetuning_models"
    assert (models / "chunk_model_1" / model_dir.WEIGHTS_FILE).exists()  # the chief's
    assert sorted(p.name for p in models.iterdir()) == ["chunk_model_1"]
