"""Fine-tuning metrics in plain NumPy, ×100 where the original reports them so.

No scikit-learn or SciPy: MCC, Pearson, Spearman (with tie-averaged ranks, as
`scipy.stats.spearmanr`), F1 and chunk entity scores are written out here.
"""

import numpy as np


def accuracy(labels, predictions):
    """Share of equal entries, ×100."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    return 100.0 * float(np.mean(labels == predictions))


def mcc(labels, predictions):
    """Binary Matthews correlation ×100 (sklearn's: 0 when a marginal is empty)."""
    y, p = np.asarray(labels) == 1, np.asarray(predictions) == 1
    tp, tn = float(np.sum(y & p)), float(np.sum(~y & ~p))
    fp, fn = float(np.sum(~y & p)), float(np.sum(y & ~p))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else 100.0 * (tp * tn - fp * fn) / denominator


def f1(labels, predictions, positive=1):
    """F1 of the positive class ×100, as GLUE reports it for MRPC and QQP."""
    y, p = np.asarray(labels) == positive, np.asarray(predictions) == positive
    tp = float(np.sum(y & p))
    denominator = float(np.sum(y) + np.sum(p))
    return 0.0 if denominator == 0 else 100.0 * 2 * tp / denominator


def pearson(x, y):
    """Pearson correlation ×100."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x - x.mean(), y - y.mean()
    return 100.0 * float(np.sum(x * y) / np.sqrt(np.sum(x * x) * np.sum(y * y)))


def rankdata(values):
    """1-based ranks with ties given their average rank (scipy's "average" method)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), np.float64)
    sorted_values = values[order]
    start = 0
    for end in range(1, len(values) + 1):
        if end == len(values) or sorted_values[end] != sorted_values[start]:
            ranks[order[start:end]] = (start + 1 + end) / 2.0  # mean of ranks start+1..end
            start = end
    return ranks


def spearman(x, y):
    """Spearman correlation ×100: Pearson of the tie-averaged ranks."""
    return pearson(rankdata(x), rankdata(y))


def mse(targets, predictions):
    """Mean squared error (STS: on the /5 normalised scale, as the original)."""
    targets, predictions = np.asarray(targets, np.float64), np.asarray(predictions, np.float64)
    return float(np.mean((targets - predictions) ** 2))


def bioes_spans(tags):
    """The entity spans {(start, end, type)} of a tag sequence, as the original reads them.

    The original `tagging_utils.get_span_labels`: a span starts at B-/S- (or any tag after
    "O") and ends just before the next B-/S-/O, taking its type from its last tag.
    """
    spans, last, start = set(), "O", -1
    for i, tag in enumerate(tags):
        position = None if tag == "O" else tag.split("-")[0]
        if (position in ("S", "B") or tag == "O") and last != "O":
            spans.add((start, i - 1, last.split("-")[-1]))
        if position in ("B", "S") or last == "O":
            start = i
        last = tag
    if len(tags) and tags[-1] != "O":
        spans.add((start, len(tags) - 1, tags[-1].split("-")[-1]))
    return spans


def chunk_scores(gold_sequences, predicted_sequences):
    """Entity-level precision, recall and F1 (×100) over BIOES tag sequences.

    Args:
        gold_sequences, predicted_sequences: lists of per-sentence tag lists.
    Returns:
        {"precision", "recall", "f1"}.
    """
    n_gold = n_pred = n_correct = 0
    for gold, pred in zip(gold_sequences, predicted_sequences, strict=True):
        g, p = bioes_spans(gold), bioes_spans(pred)
        n_gold, n_pred, n_correct = n_gold + len(g), n_pred + len(p), n_correct + len(g & p)
    precision = 100.0 * n_correct / n_pred if n_pred else 0.0
    recall = 100.0 * n_correct / n_gold if n_gold else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f}
