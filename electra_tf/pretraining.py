"""The ELECTRA pretraining objective, top to bottom: mask → generator → sample → discriminator.

A faithful port of the original `run_pretraining.PretrainingModel` and
`pretrain/pretrain_helpers.py` (spec §4). Every random op is stateless and takes an explicit
seed, so a run seeded once is reproducible (and resumable) step by step.
"""

import dataclasses
import math

import tensorflow as tf

from electra_tf import modeling

# BERT vocabulary ids of the special tokens; `special_ids(vocab)` reads them from a vocab.
SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}


@dataclasses.dataclass
class MaskedInputs:
    """The original `Inputs` namedtuple after `mask()`. Shapes: [B, S] and [B, N]."""

    input_ids: tf.Tensor
    input_mask: tf.Tensor
    segment_ids: tf.Tensor
    masked_lm_positions: tf.Tensor
    masked_lm_ids: tf.Tensor
    masked_lm_weights: tf.Tensor

    def features(self, input_ids=None):
        """The model inputs, optionally with other `input_ids`."""
        return {"input_ids": self.input_ids if input_ids is None else input_ids,
                "input_mask": self.input_mask, "segment_ids": self.segment_ids}


def special_ids(vocab):
    """{token: id} of [CLS], [SEP] and [MASK], looked up by string as the original does."""
    missing = [t for t in ("[CLS]", "[SEP]", "[MASK]") if t not in vocab]
    if missing:
        raise ValueError(f"vocabulary lacks the special tokens {', '.join(missing)}")
    return {t: vocab[t] for t in ("[CLS]", "[SEP]", "[MASK]")}


def gather_positions(sequence, positions):
    """sequence [B, S, ...] at positions [B, N] → [B, N, ...]."""
    return tf.gather(sequence, positions, batch_dims=1)


def scatter_update(sequence, updates, positions):
    """The original `scatter_update`: writes `updates` [B, N(, D)] at `positions` [B, N].

    Updates aimed at position 0 are ignored. A position written k times receives the
    mean of its k updates (floor division for ints): for duplicate sampled ids this is
    an arbitrary id, exactly as in the original (spec §4.1 step 6).
    Returns:
        (updated sequence, int32 [B, S] mask of updated positions).
    """
    has_depth = len(sequence.shape) == 3
    if not has_depth:
        sequence = sequence[..., None]
        updates = updates[..., None]
    batch, length = tf.shape(sequence)[0], tf.shape(sequence)[1]
    depth = tf.shape(sequence)[2]
    flat = tf.reshape(positions + length * tf.range(batch)[:, None], [-1, 1])
    summed = tf.scatter_nd(flat, tf.reshape(updates, [-1, depth]), [batch * length, depth])
    summed = tf.reshape(summed, [batch, length, depth])
    counts = tf.scatter_nd(flat, tf.ones_like(flat[:, 0]), [batch * length])
    not_first = tf.concat([tf.zeros([batch, 1], tf.int32),
                           tf.ones([batch, length - 1], tf.int32)], axis=1)
    counts = tf.reshape(counts, [batch, length]) * not_first
    counts_3d = tf.cast(counts[..., None], sequence.dtype)
    if sequence.dtype.is_floating:
        summed /= tf.maximum(1.0, counts_3d)
    else:
        summed //= tf.maximum(1, counts_3d)
    hit = tf.minimum(counts_3d, 1)
    updated = (1 - hit) * sequence + hit * summed
    if not has_depth:
        updated = updated[..., 0]
    return updated, tf.minimum(counts, 1)


def candidates_mask(input_ids, input_mask, ids):
    """Positions that may be masked: real tokens other than [CLS], [SEP] and [MASK]."""
    ignore = tf.reduce_any(tf.stack([tf.equal(input_ids, ids[t]) for t in
                                     ("[SEP]", "[CLS]", "[MASK]")]), axis=0)
    return tf.logical_and(tf.logical_not(ignore), tf.cast(input_mask, tf.bool))


def mask(features, mask_prob, max_predictions, ids, seeds):
    """The original `pretrain_helpers.mask`: dynamic masking of one batch (spec §4.1).

    Selects max(1, min(N, round_half_even(mask_prob · #real tokens))) positions per row,
    uniformly over candidates and WITH replacement; 85% of them become [MASK], the rest
    keep their token (no random-token replacement).

    Args:
        features: dict of int32 `input_ids`, `input_mask`, `segment_ids` [B, S].
        mask_prob: share of tokens to select.
        max_predictions: N.
        ids: `special_ids(vocab)`.
        seeds: int [B, 2], one seed per example, so an example's masking does not depend
            on which batch or replica it is in.
    Returns:
        `MaskedInputs`.
    """
    input_ids = tf.cast(features["input_ids"], tf.int32)
    input_mask = tf.cast(features["input_mask"], tf.int32)
    batch = tf.shape(input_ids)[0]
    num_tokens = tf.cast(tf.reduce_sum(input_mask, -1), tf.float32)
    num_to_predict = tf.maximum(1, tf.minimum(
        max_predictions, tf.cast(tf.round(num_tokens * mask_prob), tf.int32)))  # half-to-even
    weights = tf.cast(tf.sequence_mask(num_to_predict, max_predictions), tf.float32)
    candidates = tf.cast(candidates_mask(input_ids, input_mask, ids), tf.float32)
    log_prob = tf.math.log(candidates / tf.reduce_sum(candidates, axis=-1, keepdims=True))

    def draw(args):
        row_log_prob, seed = args
        position_seed, mask_seed = tf.unstack(
            tf.random.experimental.stateless_split(_split(seed, _MASKING), 2))
        # N independent draws from the candidates, by Gumbel-max: the same distribution as
        # the original's `tf.random.categorical`, which XLA cannot compile.
        positions = _gumbel_argmax(
            tf.tile(row_log_prob[None], [max_predictions, 1]), position_seed)
        return positions, tf.random.stateless_uniform([max_predictions], mask_seed) < 0.85

    positions, to_mask = tf.map_fn(draw, (log_prob, seeds), fn_output_signature=(
        tf.TensorSpec([max_predictions], tf.int32), tf.TensorSpec([max_predictions], tf.bool)))
    positions *= tf.cast(weights, tf.int32)  # unused slots point at 0, which scatter ignores
    masked_ids = gather_positions(input_ids, positions) * tf.cast(weights, tf.int32)
    # 85% of the selected slots show [MASK]; the rest keep their token (position 0: ignored).
    replace_positions = positions * tf.cast(to_mask, tf.int32)
    masked_input_ids, _ = scatter_update(
        input_ids, tf.fill([batch, max_predictions], ids["[MASK]"]), replace_positions)
    return MaskedInputs(tf.stop_gradient(masked_input_ids), input_mask,
                        tf.cast(features["segment_ids"], tf.int32), positions, masked_ids,
                        weights)


def unmask(masked):
    """The original ids: `masked_lm_ids` scattered back (position-0 slots are ignored)."""
    input_ids, _ = scatter_update(masked.input_ids, masked.masked_lm_ids,
                                  masked.masked_lm_positions)
    return input_ids


def sample_from_softmax(logits, seeds, disallow=None):
    """Gumbel-max sampling (spec §4.4): argmax(logits + Gumbel noise) as int32 ids.

    Args:
        logits: [B, N, V] float32 (already divided by the temperature).
        seeds: int [B, 2], one per example.
        disallow: optional [B, N, V] one-hot of tokens never to sample (logit −1000).
    Returns:
        int32 [B, N].
    """
    if disallow is not None:
        logits -= 1000.0 * disallow
    return tf.stop_gradient(tf.map_fn(
        lambda args: _gumbel_argmax(args[0], _split(args[1], _SAMPLING)), (logits, seeds),
        fn_output_signature=tf.TensorSpec(logits.shape[1:-1], tf.int32)))


def _gumbel_argmax(logits, seed):
    """argmax(logits + Gumbel noise) over the last axis, with the original's noise formula.

    The original takes the argmax of softmax(logits + g); the softmax does not move it.
    """
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed)
    gumbel = -tf.math.log(-tf.math.log(uniform + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, -1, output_type=tf.int32)


# Which of an example's seeds feeds which random draw.
_MASKING, _SAMPLING = 0, 1


def _split(seed, stream):
    """The example seed of one random stream (masking or sampling)."""
    return tf.random.experimental.stateless_split(seed, 2)[stream]


def example_seeds(run_seed, first_example, batch_size):
    """[B, 2] int64 seeds for examples first_example .. first_example + B − 1 of a run."""
    index = tf.cast(first_example, tf.int64) + tf.range(batch_size, dtype=tf.int64)
    return tf.stack([tf.fill([batch_size], tf.cast(run_seed, tf.int64)), index], axis=1)


def softmax_output(logits, targets, weights, global_sum=tf.identity):
    """The original `get_softmax_output`: per-slot NLL and its weighted mean.

    `global_sum` sums the denominator over replicas, so that a batch split over devices
    has exactly the loss of the whole batch on one device.
    Returns:
        dict: `logits`, `probs`, `per_example_loss` [B, N], `loss` (Σ w·nll / (Σ w + 1e-6)),
        `preds` int32 [B, N].
    """
    log_probs = tf.nn.log_softmax(logits)
    nll = -tf.reduce_sum(log_probs * tf.one_hot(targets, tf.shape(logits)[-1]), axis=-1)
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
        models: the `modeling.ElectraModels` to train.
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
        elif isinstance(generator, modeling.TwoTowerGenerator):
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
