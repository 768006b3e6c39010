"""The ELECTRA pretraining objective, top to bottom: mask → generator → sample → discriminator.

A faithful port of the original `run_pretraining.PretrainingModel`: the losses of both
networks, every variant (ELECTRA, the BERT-style MLM baseline, the uniform generator, one
shared network, Electric) and what evaluation reads. The random draws are in
`pretraining.helpers`.
"""

import math

import tensorflow as tf

from electra_tf.models import TwoTowerGenerator
from electra_tf.pretraining.helpers import (
    SPECIAL_IDS, candidates_mask, gather_positions, mask, sample_from_softmax, scatter_update,
    unmask)


def softmax_output(logits, targets, weights, global_sum=tf.identity):
    """The original `get_softmax_output`: per-slot NLL and its weighted mean.

    `global_sum` sums the denominator over replicas, so that a batch split over devices
    has exactly the loss of the whole batch on one device.
    Returns:
        dict: `logits`, `probs`, `per_example_loss` [B, N], `loss` (Σ w·nll / (Σ w + 1e-6)),
        `preds` int32 [B, N].
    """
    log_probs = tf.nn.log_softmax(logits)
    # The original sums log_probs · one_hot(targets): the same number (one term, + zeros)
    # without a [.., V] one-hot tensor and its product.
    nll = -tf.gather(log_probs, targets[..., None], batch_dims=-1)[..., 0]
    loss = tf.reduce_sum(weights * nll) / (global_sum(tf.reduce_sum(weights)) + 1e-6)
    return {"logits": logits, "probs": tf.exp(log_probs), "per_example_loss": nll,
            "loss": loss, "preds": tf.argmax(log_probs, -1, output_type=tf.int32)}


def discriminator_output(logits, labels, input_mask, global_sum=tf.identity):
    """The original `_get_discriminator_output` loss: a token-level masked mean.

    [CLS] and [SEP] count; padding does not. `per_example_loss` is each row's own mean.
    """
    weights = tf.cast(input_mask, tf.float32)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(tf.cast(labels, tf.float32),
                                                     logits) * weights
    return {"logits": logits, "probs": tf.sigmoid(logits), "labels": labels,
            "per_example_loss": tf.reduce_sum(losses, -1) / (1e-6 + tf.reduce_sum(weights, -1)),
            "loss": tf.reduce_sum(losses) / (1e-6 + global_sum(tf.reduce_sum(weights))),
            # round((sign + 1) / 2): a logit of exactly 0 is "real".
            "preds": tf.cast(tf.round((tf.sign(logits) + 1) / 2), tf.int32)}


class Objective:
    """The whole pretraining loss of one configuration (the original `PretrainingModel`).

    Args:
        config: a `PretrainingConfig`.
        models: the `models.ElectraModels` to train.
        ids: `special_ids(vocab)`; the BERT ids by default.
        global_sum: sums a scalar over replicas (identity on one device); the loss
            denominators are global so that replicas' losses add up to the batch's loss.
    """

    def __init__(self, config, models, ids=None, global_sum=tf.identity):
        self.config = config
        self.models = models
        self.ids = ids or {t: SPECIAL_IDS[t] for t in ("[CLS]", "[SEP]", "[MASK]")}
        self.global_sum = global_sum

    def __call__(self, features, seeds, training=False, masked=None, sample=None):
        """Runs the objective on one batch.

        Args:
            features: dict of int32 `input_ids`, `input_mask`, `segment_ids` [B, S].
            seeds: int [B, 2], one per example (`example_seeds`); masking and sampling
                draw from them.
            training: dropout on or off (the original trains with dropout in both nets).
            masked: a `MaskedInputs` to use instead of drawing a masking (tests).
            sample: a function (logits, seeds, disallow) -> ids instead of Gumbel sampling.
        Returns:
            dict with `total_loss`, `masked` (MaskedInputs), `mlm` (softmax_output at the
            masked positions), `sampled_tokids`, `fake_input_ids`, and, with a
            discriminator, `disc` (discriminator_output); `cloze` for Electric.
        """
        config, models, global_sum = self.config, self.models, self.global_sum
        # 1. Mask: choose positions, put [MASK] at 85% of them.
        if masked is None:
            masked = mask(features, config.mask_prob, config.max_predictions_per_seq,
                          self.ids, seeds)
        original_ids = unmask(masked)
        # 2. Generator: MLM logits at the masked positions only.
        cloze = None
        generator = models.generator
        vocab_size = config.vocab_size
        if generator is None:  # uniform generator: every token equally likely
            logits = tf.zeros(tf.concat([tf.shape(masked.masked_lm_ids), [vocab_size]], 0))
        elif isinstance(generator, TwoTowerGenerator):
            # Electric: the two towers read the unmasked input; cloze logits everywhere.
            cloze_logits = generator(masked.features(original_ids), training=training)["logits"]
            candidates = tf.cast(candidates_mask(original_ids, masked.input_mask, self.ids),
                                 tf.float32)
            cloze = softmax_output(cloze_logits, original_ids, candidates, global_sum)
            logits = gather_positions(cloze_logits, masked.masked_lm_positions)
        else:
            hidden = generator.encoder(masked.features(), training=training)["sequence_output"]
            logits = generator.head(hidden, mask_positions=masked.masked_lm_positions)
        mlm = softmax_output(logits, masked.masked_lm_ids, masked.masked_lm_weights, global_sum)
        total_loss = config.gen_weight * (cloze["loss"] if cloze else mlm["loss"])

        # 3. Sample fake tokens (no gradient reaches the generator) and build the labels.
        disallow = (tf.one_hot(masked.masked_lm_ids, vocab_size) if config.disallow_correct
                    else None)
        sample = sample or sample_from_softmax
        sampled = tf.stop_gradient(sample(logits / config.temperature, seeds, disallow))
        fake_input_ids, updated = scatter_update(original_ids, sampled,
                                                 masked.masked_lm_positions)
        if config.electric_objective:
            labels = updated  # every selected position counts as fake
        else:  # a sample equal to the original token is real
            labels = updated * tf.cast(tf.not_equal(fake_input_ids, original_ids), tf.int32)
        outputs = {"masked": masked, "mlm": mlm, "sampled_tokids": sampled,
                   "fake_input_ids": fake_input_ids, "cloze": cloze}

        # 4. Discriminator: which tokens were replaced?
        if models.discriminator is not None:
            disc_logits = models.discriminator(masked.features(fake_input_ids),
                                               training=training)["logits"]
            if cloze is not None:
                # Electric scores against the generator: + log q(x_t) + log(p / (1 − p)).
                log_q = tf.reduce_sum(tf.nn.log_softmax(cloze["logits"]) * tf.one_hot(
                    fake_input_ids, vocab_size), -1)
                disc_logits += tf.stop_gradient(log_q) + math.log(
                    config.mask_prob / (1 - config.mask_prob))
            disc = discriminator_output(disc_logits, labels, masked.input_mask, global_sum)
            total_loss += config.disc_weight * disc["loss"]
            outputs["disc"] = disc
        outputs["total_loss"] = total_loss
        return outputs
