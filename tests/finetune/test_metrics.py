"""Metrics against hand-computed values, and the metric each GLUE task reports."""

import numpy as np
import pytest

from finetune import metrics
from finetune.config import FinetuningConfig
from tests.finetune.conftest import task


def test_mcc_accuracy_f1():
    y = [1, 1, 1, 0, 0, 0, 1, 0]
    p = [1, 1, 0, 0, 0, 1, 1, 1]
    # tp=3 tn=2 fp=2 fn=1: (6 - 2) / sqrt(5 * 4 * 4 * 3)
    assert metrics.mcc(y, p) == pytest.approx(100 * 4 / np.sqrt(240))
    assert metrics.mcc([1, 1], [1, 1]) == 0.0  # sklearn's convention
    assert metrics.accuracy(y, p) == pytest.approx(62.5)
    assert metrics.f1(y, p) == pytest.approx(100 * 6 / 9)  # 2tp / (2tp + fp + fn)


def test_pearson_spearman_with_ties():
    x, y = [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]
    # Pearson: centred x = (-2..2), centred y = (-2, 0, 1, 0, 1): 6 / sqrt(10 * 6)
    assert metrics.pearson(x, y) == pytest.approx(100 * 6 / np.sqrt(60))
    np.testing.assert_array_equal(metrics.rankdata(y), [1, 2.5, 4.5, 2.5, 4.5])
    # Ranks of y centred: (-2, -0.5, 1.5, -0.5, 1.5): 7 / sqrt(10 * 9)
    assert metrics.spearman(x, y) == pytest.approx(100 * 7 / np.sqrt(90))
    assert metrics.mse([0.2, 0.4], [0.4, 0.4]) == pytest.approx(0.02)


def test_chunk_scores():
    gold = [["B-NP", "E-NP", "S-VP", "O", "B-NP", "I-NP", "E-NP"]]
    pred = [["B-NP", "E-NP", "S-NP", "O", "B-NP", "I-NP", "E-NP"]]
    assert metrics.bioes_spans(gold[0]) == {(0, 1, "NP"), (2, 2, "VP"), (4, 6, "NP")}
    scores = metrics.chunk_scores(gold, pred)  # 2 of 3 predicted, 2 of 3 gold
    assert scores["precision"] == pytest.approx(200 / 3)
    assert scores["recall"] == pytest.approx(200 / 3)
    assert scores["f1"] == pytest.approx(200 / 3)


# The GLUE task -> metric mapping, checked by value on hand-built predictions. The labels
# and predictions are chosen so that accuracy, MCC and the F1 of either class all differ.
LABELS = np.array([1, 1, 1, 0, 0, 0, 1, 0, 1, 1])
PREDICTIONS = np.array([1, 0, 1, 0, 1, 1, 1, 0, 0, 1])
LOSSES = np.array([0.3, 1.2, 0.1, 0.4, 0.9, 2.0, 0.2, 0.5, 1.1, 0.6])


def _counts(y, p):
    return (np.sum((y == 1) & (p == 1)), np.sum((y == 0) & (p == 0)),
            np.sum((y == 0) & (p == 1)), np.sum((y == 1) & (p == 0)))


def _glue_task(name):
    return task(FinetuningConfig("m", "/d", task_names=[name]), name)


@pytest.mark.parametrize("name", ["cola", "mrpc", "qqp", "mnli", "sst", "rte", "qnli"])
def test_each_glue_classification_task_reports_its_metric(name):
    tp, tn, fp, fn = _counts(LABELS, PREDICTIONS)  # 4, 2, 2, 2
    accuracy = 100 * (tp + tn) / len(LABELS)
    expected = {
        "cola": {"mcc": 100 * (tp * tn - fp * fn) / np.sqrt(
            float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))},
        # GLUE's F1 for MRPC and QQP is that of the positive class (label 1).
        "mrpc": {"accuracy": accuracy, "f1": 100 * 2 * tp / (2 * tp + fp + fn)},
    }
    expected["qqp"] = expected["mrpc"]
    assert len({accuracy, expected["cola"]["mcc"], expected["mrpc"]["f1"],
                100 * 2 * tn / (2 * tn + fp + fn)}) == 4  # every candidate differs
    outputs = {"label_ids": LABELS, "predictions": PREDICTIONS, "loss": LOSSES}
    results = _glue_task(name).score(None, outputs)
    want = dict(expected.get(name, {"accuracy": accuracy}), loss=LOSSES.mean())
    assert set(results) == set(want)
    for key, value in want.items():
        assert results[key] == pytest.approx(value, rel=1e-9), key


def test_sts_reports_pearson_spearman_and_mse():
    targets = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.2])  # on the /5 scale
    predictions = np.array([0.2, 0.1, 0.5, 0.9, 0.3, 0.25])
    ranks = lambda v: np.argsort(np.argsort(v)).astype(float)  # noqa: E731 (no ties here)
    outputs = {"targets": targets, "predictions": predictions, "loss": LOSSES[:6]}
    results = _glue_task("sts").score(None, outputs)
    expected = {"pearson": 100 * np.corrcoef(targets, predictions)[0, 1],
                "spearman": 100 * np.corrcoef(ranks(targets), ranks(predictions))[0, 1],
                "mse": np.mean((targets - predictions) ** 2), "loss": LOSSES[:6].mean()}
    assert expected["pearson"] != pytest.approx(expected["spearman"])
    assert set(results) == set(expected)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-9), key
