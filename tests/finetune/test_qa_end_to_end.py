"""End to end on generated SQuAD-format data: a tiny randomly initialised model learns to
find the answer (SQuAD 1.1) and to abstain on unanswerable questions (SQuAD 2.0) far above
trivial baselines, through the whole command path (featurise → train → decode → score →
result files), in well under a minute each on CPU."""

import json
import shutil

import pytest

from finetune import synthetic, trials
from finetune.config import FinetuningConfig
from finetune.qa import scoring
from tests.conftest import FIXTURES

TINY = {"init_checkpoint": None, "vocab_size": 1024, "embedding_size": 64,
        "model_hparam_overrides": {"hidden_size": 64, "intermediate_size": 256,
                                   "num_attention_heads": 4, "num_hidden_layers": 2},
        "learning_rate": 1e-3, "layerwise_lr_decay": 0.0, "train_batch_size": 32,
        "eval_batch_size": 32, "predict_batch_size": 32, "seed": 1, "max_seq_length": 64,
        "max_query_length": 8, "doc_stride": 32, "num_train_epochs": 2.0}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("squad")
    shutil.copy(FIXTURES / "vocab_tiny.txt", path / "vocab.txt")
    synthetic.write_squad_data(str(path), "squadv1", train=600, dev=150, seed=0)
    synthetic.write_squad_data(str(path), "squad", train=600, dev=150, test=40, seed=1)
    return path


def dev_set(data_dir, task):
    return json.loads((data_dir / "finetuning_data" / task / "dev.json").read_text())["data"]


def test_generated_contexts_need_several_windows(data_dir):
    paragraphs = dev_set(data_dir, "squad")[0]["paragraphs"]
    window = TINY["max_seq_length"] - TINY["max_query_length"] - 3  # at most
    assert max(len(p["context"].split()) for p in paragraphs) > window
    for p in paragraphs:
        for qa in p["qas"]:
            for answer in qa["answers"]:
                start = answer["answer_start"]
                assert p["context"][start:start + len(answer["text"])] == answer["text"]


def test_squad_v1(data_dir):
    config = FinetuningConfig("random", str(data_dir), task_names=["squadv1"], **TINY)
    results = trials.run_finetuning(config)[0]["squadv1"]
    dataset = dev_set(data_dir, "squadv1")
    first_word = {qa["id"]: p["context"].split()[0]
                  for p in dataset[0]["paragraphs"] for qa in p["qas"]}
    baseline = scoring.squad_v1(dataset, first_word)
    assert results["f1"] >= 90.0 > baseline["f1"] + 50  # measured: 100.0 vs 5.3
    predictions = json.loads(open(config.qa_preds_file("squadv1")).read())
    assert sorted(predictions) == sorted(first_word)
    assert json.loads(open(config.qa_eval_file("squadv1")).read()) == results


def test_squad_v2_with_unanswerable_questions(data_dir):
    config = FinetuningConfig("random", str(data_dir), task_names=["squad"],
                              write_test_outputs=True, **TINY)
    results = trials.run_finetuning(config)[0]["squad"]
    dataset = dev_set(data_dir, "squad")
    no_answer = {qa["id"]: "" for p in dataset[0]["paragraphs"] for qa in p["qas"]}
    baseline = scoring.squad_v2(dataset, no_answer)
    assert 0 < results["NoAns_total"] < results["total"] == 150
    assert results["f1"] >= 90.0 > baseline["f1"] + 30  # measured: 100.0 vs 32.7
    assert results["HasAns_f1"] >= 85.0 and results["NoAns_exact"] >= 85.0
    null_odds = json.loads(open(config.qa_na_file("squad")).read())
    assert sorted(null_odds) == sorted(no_answer)
    test = json.loads(open(config.test_predictions("squad", "test", 1)).read())
    assert sorted(test) == sorted(f"test-{i}" for i in range(40))
    assert "" in test.values() and any(test.values())
