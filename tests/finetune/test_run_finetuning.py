"""End to end: the original tiny checkpoint fine-tuned on two tiny tasks, then scored."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from finetune import run_finetuning
from finetune.config import FinetuningConfig
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
