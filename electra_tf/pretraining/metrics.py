"""The original's pretraining eval metrics (`metric_fn`), summed over an eval run.

Each metric is Σ numerator / Σ denominator over the eval set: weighted accuracies and means
as `tf.metrics.accuracy`/`mean`; `disc_auc` from the (label, probability) points.
"""

import collections

import keras
import tensorflow as tf


def eval_outputs(objective, features, seeds):
    """Per-example numerators and denominators of the eval metrics on one batch.

    Args:
        objective: a `pretraining.objective.Objective`.
        features, seeds: a batch and its per-example seeds.
    Returns:
        dict `<metric>/num`, `<metric>/den` [B] (`loss`: [1], one point per batch), and
        `auc/labels`, `auc/probs` [B, S] with a discriminator.
    """
    out = objective(features, seeds, training=False)
    masked, mlm = out["masked"], out["mlm"]
    w, ids = masked.masked_lm_weights, masked.masked_lm_ids

    def ratio(name, num, den):
        return {f"{name}/num": tf.reduce_sum(num, -1), f"{name}/den": tf.reduce_sum(den, -1)}

    def hits(a, b):
        return tf.cast(tf.equal(a, b), tf.float32)

    result = {
        **ratio("masked_lm_accuracy", w * hits(mlm["preds"], ids), w),
        **ratio("masked_lm_loss", w * mlm["per_example_loss"], w),
        # The eval `loss` is the mean of `total_loss` over batches: one point per batch.
        "loss/num": tf.reshape(out["total_loss"], [1]), "loss/den": tf.ones([1]),
    }
    if "disc" in out:
        result.update(ratio("sampled_masked_lm_accuracy", w * hits(out["sampled_tokids"], ids),
                            w))
    if "disc" in out and objective.config.disc_weight > 0:
        disc, mask = out["disc"], tf.cast(masked.input_mask, tf.float32)
        right = hits(disc["labels"], disc["preds"])
        preds, labels = tf.cast(disc["preds"], tf.float32), tf.cast(disc["labels"], tf.float32)
        result.update({
            "disc_loss/num": disc["per_example_loss"],
            "disc_loss/den": tf.ones_like(disc["per_example_loss"]),
            **ratio("disc_accuracy", right * mask, mask),
            **ratio("disc_precision", right * preds * mask, preds * mask),
            **ratio("disc_recall", right * labels * mask, labels * mask),
            # Padding enters the AUC as (label 0, prob 0) points, as in the original.
            "auc/labels": labels * mask, "auc/probs": disc["probs"] * mask,
        })
    return result


class EvalTotals:
    """Sums `eval_outputs` over batches and turns the sums into the metrics."""

    def __init__(self):
        self.totals = collections.defaultdict(float)
        self.auc = keras.metrics.AUC(num_thresholds=200)
        self.has_auc = False

    def add(self, outputs):
        """Adds one batch of `eval_outputs` (NumPy arrays, all replicas concatenated)."""
        for key, value in outputs.items():
            if key.endswith(("/num", "/den")):
                self.totals[key] += float(value.sum())
        if "auc/labels" in outputs:
            self.has_auc = True
            self.auc.update_state(outputs["auc/labels"].ravel(), outputs["auc/probs"].ravel())

    def result(self):
        """{metric: float}; as tf.metrics, a metric with no weight at all is 0."""
        totals = self.totals
        results = {key: totals[key + "/num"] / max(totals[key + "/den"], 1e-12)
                   for key in sorted(k[:-len("/num")] for k in totals if k.endswith("/num"))}
        if self.has_auc and "disc_loss" in results:
            results["disc_auc"] = float(self.auc.result())
        return results
