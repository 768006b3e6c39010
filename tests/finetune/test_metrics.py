"""Metrics against hand-computed values."""

import numpy as np
import pytest

from finetune import metrics


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
