"""End to end: the original tiny checkpoint fine-tuned on two tiny tasks, then scored."""

import json
import os
import shutil
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints
from finetune import heads, model_dir, run_finetuning
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES, REPO

TINY = {"embedding_size": 32, "vocab_size": 1024, "max_seq_length": 16,
        "model_hparam_overrides": {"hidden_size": 64, "intermediate_size": 256,
                                   "num_attention_heads": 4, "num_hidden_layers": 2},
        "train_batch_size": 4, "eval_batch_size": 4, "predict_batch_size": 4,
        "num_train_epochs": 2.0, "learning_rate": 1e-3, "seed": 1}


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def data_dir(tmp_path):
    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    rte = ["index\tsentence1\tsentence2\tlabel"] + [
        f"{i}\tthe cat sat {i}\ta cat {'sat' if i % 2 else 'ran'}\t"
        f"{'entailment' if i % 2 else 'not_entailment'}" for i in range(6)]
    sts = ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
           "sentence2\tscore"] + [f"{i}\tg\tf\ty\t{i}\tn\tn\ta plane {i}\tan air plane\t{i % 6}"
                                  for i in range(5)]
    for name, lines in (("rte", rte), ("sts", sts)):
        write(tmp_path / "finetuning_data" / name / "train.tsv", lines)
        write(tmp_path / "finetuning_data" / name / "dev.tsv", lines)
    write(tmp_path / "finetuning_data" / "rte" / "test.tsv",
          [line.rsplit("\t", 1)[0] for line in rte])
    write(tmp_path / "finetuning_data" / "sts" / "test.tsv",
          [line.rsplit("\t", 1)[0] for line in sts])
    return tmp_path


def test_two_tasks_from_the_original_tiny_checkpoint(data_dir):
    config = FinetuningConfig(
        "tiny", str(data_dir), task_names=["rte", "sts"], write_test_outputs=True,
        init_checkpoint=str(FIXTURES / "original-tiny" / "ckpt" / "model.ckpt"), **TINY)
    results = run_finetuning.run_finetuning(config)
    assert set(results[0]) == {"rte", "sts"}
    assert set(results[0]["sts"]) == {"pearson", "spearman", "mse", "loss"}
    assert 0 <= results[0]["rte"]["accuracy"] <= 100
    saved = json.loads(open(config.results_json).read())
    assert saved["trials"] == json.loads(json.dumps(results))
    assert saved["summary"]["rte"]["accuracy"]["std"] == 0.0  # one trial
    assert open(config.results_txt).read().startswith("rte: accuracy: ")
    rte_tsv = (data_dir / "models/tiny/test_predictions/glue_1/RTE.tsv").read_text().split("\n")
    assert rte_tsv[0] == "index\tprediction" and len(rte_tsv) == 8
    assert rte_tsv[1].split("\t")[1] in ("entailment", "not_entailment")
    sts = json.loads(open(config.test_predictions("sts", "test", 1)).read())
    assert sorted(sts) == [str(i) for i in range(5)]
    # Re-evaluating the saved model (do_train false) gives the same numbers.
    again = run_finetuning.run_finetuning(FinetuningConfig(
        "tiny", str(data_dir), task_names=["rte", "sts"], do_train=False, **TINY))
    np.testing.assert_allclose(again[0]["sts"]["loss"], results[0]["sts"]["loss"], rtol=1e-5)


def test_pad_to_multiple():
    features = {"task_id": np.array([0, 1, 0]), "input_ids": np.ones((3, 2), np.int32)}
    padded = run_finetuning.pad_to_multiple(features, 4, n_tasks=2)
    assert padded["task_id"].tolist() == [0, 1, 0, 2]
    assert padded["input_ids"][3].tolist() == [0, 0]


def test_cli_rejects_unknown_hparam(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "finetune.run_finetuning", "--data-dir", str(tmp_path),
         "--model-name", "m", "--hparams", '{"learning_rat": 1}'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "error: Unknown hparam: learning_rat" in result.stderr


def test_summarize_over_trials():
    trials = [{"sts": {"pearson": 1.0}}, {"sts": {"pearson": 2.0}}, {"sts": {"pearson": 6.0}}]
    summary = run_finetuning.summarize(trials)["sts"]["pearson"]
    assert summary["mean"] == 3.0 and summary["median"] == 2.0
    np.testing.assert_allclose(summary["std"], np.std([1.0, 2.0, 6.0]))
    assert run_finetuning.summarize([]) == {}


def test_model_dir_holds_keras_and_original_checkpoints(data_dir):
    """A trial's model dir reloads (ours and the original TF1 layout) to the same outputs."""
    config = FinetuningConfig(
        "tiny", str(data_dir), task_names=["rte"], num_trials=1,
        init_checkpoint=str(FIXTURES / "original-tiny" / "ckpt" / "model.ckpt"), **TINY)
    run_finetuning.run_finetuning(config)
    directory = config.model_dir + "_1"
    loaded = model_dir.load(directory)
    assert [t.name for t in loaded.tasks] == ["rte"]
    assert json.loads(open(f"{directory}/labels.json").read()) == {
        "rte": ["entailment", "not_entailment"]}
    prefix = checkpoints.resolve_checkpoint(directory + "/original")
    names = dict(tf.train.list_variables(prefix))
    steps = int(8 // 4 * 2.0)  # 6 examples + 2 padding, batch 4, 2 epochs (spec §8.4)
    assert prefix.endswith(f"model.ckpt-{steps}")
    assert names["task_specific/rte/dense/kernel"] == [64, 2]
    assert "task_specific/rte/dense/kernel/adam_m" in names and "global_step" in names
    assert int(tf.train.load_checkpoint(prefix).get_tensor("global_step")) == steps
    original = heads.load_finetuned_original(prefix, config, loaded.tasks)
    _, features = run_finetuning.featurize(config, loaded.tasks, "dev")
    a = loaded.model(features, training=False)["rte"]["logits"]
    b = original(features, training=False)["rte"]["logits"]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.abs(a).max() > 0


def test_keep_all_models_false_keeps_only_the_last(data_dir):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], num_trials=2,
                              keep_all_models=False, do_eval=False, **dict(
                                  TINY, num_train_epochs=1.0, init_checkpoint=None))
    run_finetuning.run_finetuning(config)
    assert not os.path.exists(config.model_dir + "_1")
    assert os.path.exists(config.model_dir + "_2/" + model_dir.WEIGHTS_FILE)


def test_foreign_files_in_a_model_dir_stop_the_run_before_training(data_dir):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], do_eval=False,
                              **dict(TINY, init_checkpoint=None))
    os.makedirs(config.model_dir + "_1")
    open(config.model_dir + "_1/notes.txt", "w").write("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        run_finetuning.run_finetuning(config)
    assert open(config.model_dir + "_1/notes.txt").read() == "mine"


def test_tfrecord_cache_is_reused_and_rebuilt_when_stale(data_dir, capsys):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte", "sts"], **TINY)
    tokenizer = FullTokenizer(config.vocab_file)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    _, built = run_finetuning.featurize(config, tasks, "train", is_training=True)
    path = os.path.join(config.preprocessed_data_dir, "rte_sts_train.tfrecord")
    assert json.loads(open(path + ".metadata").read())["n_examples"] == 6 + 5 * 2  # STS doubled
    examples, cached = run_finetuning.featurize(config, tasks, "train", is_training=True)
    assert "cached train records" in capsys.readouterr().out and examples is None
    assert sorted(cached) == sorted(built)
    for key in built:
        assert cached[key].dtype == built[key].dtype
        np.testing.assert_array_equal(cached[key], built[key])
    longer = FinetuningConfig("tiny", str(data_dir), task_names=["rte", "sts"],
                              **dict(TINY, max_seq_length=20))
    _, rebuilt = run_finetuning.featurize(longer, tasks_lib.get_tasks(longer, tokenizer),
                                          "train", is_training=True)
    assert "cached" not in capsys.readouterr().out
    assert rebuilt["input_ids"].shape == (16, 20)


def test_progress_lines_and_mixed_bfloat16(data_dir, capsys):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["sts"],
                              precision="mixed_bfloat16", **dict(TINY, init_checkpoint=None))
    try:
        results = run_finetuning.run_finetuning(config)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = capsys.readouterr().out
    steps = int(12 // 4 * 2.0)  # 5 pairs doubled, padded to 12
    assert f"step {steps}/{steps} (100.0%) loss " in out and " seq/s | elapsed " in out
    assert np.isfinite(results[0]["sts"]["loss"])


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


DISTRIBUTED = REPO / "tests" / "finetune" / "distributed_finetune.py"


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
            [sys.executable, str(DISTRIBUTED), "worker", str(path), str(tmp_path / f"{index}.json")],
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
