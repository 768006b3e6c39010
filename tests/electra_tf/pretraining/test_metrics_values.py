"""Every pretraining eval metric by value, on two hand-built batches.

A stand-in objective returns fixed outputs, so `eval_outputs` and `EvalTotals` are checked
alone against the original `metric_fn`'s definitions: the expected values are counted by
hand, the AUC computed exactly in NumPy.
"""

import types

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.pretraining import helpers, metrics

# Two batches: 3 rows of 6 tokens (rows 1 and 2 end in padding), 2 masked-LM slots per row.
# The hand counts of what each metric sees are in `test_every_eval_metric_by_value`.
BATCHES = [
    dict(masked_lm_ids=[[5, 6], [7, 8]], masked_lm_weights=[[1, 1], [1, 0]],
         mlm_preds=[[5, 9], [7, 8]], mlm_loss=[[0.5, 2.0], [0.25, 9.0]],
         sampled=[[5, 5], [1, 8]], total_loss=3.0,
         input_mask=[[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]],
         labels=[[0, 1, 1, 0, 0, 0], [0, 1, 0, 1, 0, 0]],
         preds=[[0, 1, 0, 1, 1, 0], [0, 1, 0, 0, 1, 1]],  # at padding: ignored
         probs=[[0.10, 0.91, 0.42, 0.63, 0.77, 0.05], [0.21, 0.86, 0.33, 0.48, 0.97, 0.99]],
         disc_per_example=[0.4, 0.7]),
    dict(masked_lm_ids=[[3, 4]], masked_lm_weights=[[1, 1]], mlm_preds=[[3, 4]],
         mlm_loss=[[1.0, 1.5]], sampled=[[3, 2]], total_loss=5.0,
         input_mask=[[1, 1, 1, 1, 1, 0]], labels=[[1, 0, 0, 1, 0, 0]],
         preds=[[1, 1, 1, 0, 0, 1]], probs=[[0.71, 0.56, 0.15, 0.27, 0.38, 0.93]],
         disc_per_example=[1.3]),
]


def fake_objective(batch, disc_weight=50.0):
    """Stands in for `Objective`: the outputs `eval_outputs` reads, from `batch`."""
    t = {k: tf.constant(v) for k, v in batch.items()}
    weights = tf.cast(t["masked_lm_weights"], tf.float32)
    masked = helpers.MaskedInputs(None, t["input_mask"], None, None, t["masked_lm_ids"],
                                  weights)

    def call(features, seeds, training=False):
        return {"masked": masked, "total_loss": t["total_loss"],
                "mlm": {"preds": t["mlm_preds"], "per_example_loss": t["mlm_loss"]},
                "sampled_tokids": t["sampled"],
                "disc": {"labels": t["labels"], "preds": t["preds"], "probs": t["probs"],
                         "per_example_loss": t["disc_per_example"]}}

    call.config = types.SimpleNamespace(disc_weight=disc_weight)
    return call


def evaluate(batches, disc_weight=50.0):
    totals = metrics.EvalTotals()
    for batch in batches:
        outputs = metrics.eval_outputs(fake_objective(batch, disc_weight), None, None)
        totals.add({k: v.numpy() for k, v in outputs.items()})
    return totals.result()


def exact_auc(labels, probs):
    """ROC AUC as the probability that a positive outranks a negative (ties count 1/2)."""
    pos, neg = probs[labels == 1], probs[labels == 0]
    return np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))


def test_every_eval_metric_by_value():
    results = evaluate(BATCHES)
    # Masked LM, weighted slots (id, argmax): (5,5)✓ (6,9)✗ (7,7)✓ | (3,3)✓ (4,4)✓; the
    # weight-0 slot (8,8) does not count; per-slot losses 0.5 + 2 + 0.25 + 1 + 1.5.
    # Sampled (id, sample): (5,5)✓ (6,5)✗ (7,1)✗ | (3,3)✓ (4,2)✗.
    # Discriminator, the 15 real tokens (label, prediction) per row:
    #   row 0: 00 11 10 01 01 00 -> labelled fake 2, predicted fake 3, both 1, right 3
    #   row 1: 00 11 00 10       -> labelled fake 2, predicted fake 1, both 1, right 3
    #   row 2: 11 01 01 10 00    -> labelled fake 2, predicted fake 3, both 1, right 2
    expected = {
        "masked_lm_accuracy": 4 / 5,
        "masked_lm_loss": 5.25 / 5,
        "sampled_masked_lm_accuracy": 2 / 5,
        "loss": (3.0 + 5.0) / 2,  # the mean of total_loss over batches
        "disc_loss": (0.4 + 0.7 + 1.3) / 3,  # the unweighted mean over examples
        "disc_accuracy": 8 / 15,
        "disc_precision": 3 / 7,  # over the predicted-fake tokens
        "disc_recall": 3 / 6,  # over the labelled-fake tokens
    }
    assert set(results) == set(expected) | {"disc_auc"}
    for name, value in expected.items():
        assert results[name] == pytest.approx(value, rel=1e-6), name
    # AUC: the 15 real tokens, plus the 3 padding positions as (label 0, prob 0) points.
    real = np.concatenate([np.ravel(b["input_mask"]) for b in BATCHES]) == 1
    labels = np.concatenate([np.ravel(b["labels"]) for b in BATCHES]) * real
    probs = np.concatenate([np.ravel(b["probs"]) for b in BATCHES]) * real
    # Every probability is alone in its bin of the 200 thresholds, so Keras' interpolated
    # sum meets the exact value.
    assert results["disc_auc"] == pytest.approx(exact_auc(labels, probs), abs=1e-6)
    # Without the padding points the AUC would differ: the test sees how padding enters.
    assert exact_auc(labels[real], probs[real]) != pytest.approx(exact_auc(labels, probs))


def test_no_discriminator_metrics_without_a_discriminator_loss():
    results = evaluate(BATCHES, disc_weight=0.0)
    assert set(results) == {"masked_lm_accuracy", "masked_lm_loss",
                            "sampled_masked_lm_accuracy", "loss"}
    assert results["sampled_masked_lm_accuracy"] == pytest.approx(2 / 5)
