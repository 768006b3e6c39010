"""Results over trials, and the GLUE submission format."""

import json

import numpy as np

from finetune import outputs
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig


def test_summarize_over_trials():
    trials = [{"sts": {"pearson": 1.0}}, {"sts": {"pearson": 2.0}}, {"sts": {"pearson": 6.0}}]
    summary = outputs.summarize(trials)["sts"]["pearson"]
    assert summary["mean"] == 3.0 and summary["median"] == 2.0
    np.testing.assert_allclose(summary["std"], np.std([1.0, 2.0, 6.0]))
    assert outputs.summarize([]) == {}


def test_results_files_list_trials_then_the_summary(tmp_path):
    config = FinetuningConfig("m", str(tmp_path), task_names=["sts"])
    trials = [{"sts": {"pearson": 1.0, "loss": 0.5}}, {"sts": {"pearson": 3.0, "loss": 0.25}}]
    done = [{"trial": 1, "model_dir": "/m_1", "global_step": 8, "train_seconds": 2.25,
             "finished_at": "2026-01-02T03:04:05+00:00"},
            {"trial": 2, "model_dir": "/ckpt", "global_step": None, "train_seconds": None,
             "finished_at": None}]
    outputs.write_results(config, trials, done)
    assert open(config.results_txt).read().splitlines() == [
        "trial 1: /m_1 (step 8, trained in 2.2 s, finished at 2026-01-02T03:04:05+00:00)",
        "sts: pearson: 1.00 - loss: 0.50", "trial 2: /ckpt", "sts: pearson: 3.00 - loss: 0.25",
        "sts (2 trials): pearson: mean 2.00 median 2.00 std 1.00 - "
        "loss: mean 0.38 median 0.38 std 0.12"]
    saved = json.loads(open(config.results_json).read())
    assert saved["hparams"] == json.loads(json.dumps(config.to_dict()))
    assert saved["trials"] == [dict(d, metrics=t) for d, t in zip(done, trials)]
    outputs.write_results(config, trials[:1])  # no trial records: numbered
    assert json.loads(open(config.results_json).read())["trials"] == [
        {"trial": 1, "metrics": trials[0]}]


def test_dev_tags_name_metrics_by_task_when_there_are_several():
    assert outputs.dev_tags({"rte": {"accuracy": 50.0, "loss": 0.7}}) == {
        "accuracy": 50.0, "loss": 0.7}
    assert outputs.dev_tags({"rte": {"accuracy": 50}, "sts": {"pearson": 0.5}}) == {
        "rte/accuracy": 50.0, "sts/pearson": 0.5}


def test_glue_submission_labels_and_sts_scale(tmp_path):
    config = FinetuningConfig("m", str(tmp_path), task_names=["rte", "sts"])
    rte, sts = (tasks_lib.get_task(config, name, tokenizer=None) for name in ("rte", "sts"))
    outputs.write_glue_submission(str(tmp_path / "RTE.tsv"), rte, [0, 1],
                                  np.array([[0.5, -1.0], [0.0, 2.0]]))
    outputs.write_glue_submission(str(tmp_path / "STS-B.tsv"), sts, [0, 1, 2],
                                  np.array([0.5, 1.3, -0.2]))
    assert (tmp_path / "RTE.tsv").read_text() == (
        "index\tprediction\n0\tentailment\n1\tnot_entailment\n")
    assert (tmp_path / "STS-B.tsv").read_text() == (
        "index\tprediction\n0\t2.500\n1\t5.000\n2\t0.000\n")
