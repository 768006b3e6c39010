"""The original `pretrain/pretrain_helpers.py`: masking, gather/scatter, sampling.

Every random op is stateless, takes an explicit per-example seed and names its algorithm
(`RNG_ALG`, Philox), so a run seeded once is reproducible (and resumable) step by step,
whatever its batch split, with or without XLA and on every platform.
"""

import dataclasses

import tensorflow as tf

from electra_tf.models.philox import RNG_ALG

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
    """{token: id} of [CLS], [SEP] and [MASK], looked up by string as the original does.

    Args:
        vocab: {token: id}, checked by `pretrain_data.tokenization.check_vocab`.
    """
    return {t: vocab[t] for t in ("[CLS]", "[SEP]", "[MASK]")}


def gather_positions(sequence, positions):
    """sequence [B, S, ...] at positions [B, N] → [B, N, ...]."""
    return tf.gather(sequence, positions, batch_dims=1)


def scatter_update(sequence, updates, positions):
    """The original `scatter_update`: writes `updates` [B, N(, D)] at `positions` [B, N].

    Updates aimed at position 0 are ignored. A position written k times receives the
    mean of its k updates (floor division for ints): for duplicate sampled ids this is
    an arbitrary id, exactly as in the original (the original's behaviour).
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
    """The original `pretrain_helpers.mask`: dynamic masking of one batch.

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
    candidates = candidates_mask(input_ids, input_mask, ids)

    def draw(args):
        row_candidates, seed = args
        position_seed, mask_seed = tf.unstack(
            tf.random.experimental.stateless_split(_split(seed, _MASKING), 2, alg=RNG_ALG))
        # N independent uniform choices among the candidates: the original's
        # `tf.random.categorical` over log(candidates / #candidates), which XLA cannot
        # compile. The argmax of uniforms takes no logarithm, whose rounding varies by
        # platform, so the positions are bit-identical everywhere.
        scores = tf.where(row_candidates[None], uniform(
            [max_predictions, tf.shape(row_candidates)[0]], position_seed), -1.0)
        positions = tf.argmax(scores, -1, output_type=tf.int32)
        return positions, uniform([max_predictions], mask_seed) < 0.85

    positions, to_mask = tf.map_fn(draw, (candidates, seeds), fn_output_signature=(
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
    """Gumbel-max sampling: argmax(logits + Gumbel noise) as int32 ids.

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
    gumbel = -tf.math.log(-tf.math.log(uniform(tf.shape(logits), seed) + 1e-9) + 1e-9)
    return tf.argmax(logits + gumbel, -1, output_type=tf.int32)


def uniform(shape, seed):
    """float32 uniforms in [0, 1) from Philox's bits: the same on every platform, with
    or without XLA.

    `tf.random.stateless_uniform` draws the same bits everywhere but turns them into floats
    in two ways: its CPU and GPU kernels keep the low 23 bits, XLA the high 23. Spelled out
    here as the kernels do it, so the eager values on CPU are TF's.

    Args:
        shape: the output shape.
        seed: int [2].
    """
    bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None,
                                       dtype=tf.uint32, alg=RNG_ALG)
    # The 23 bits as the mantissa of a float in [1, 2), minus 1: exact.
    one_to_two = tf.bitwise.bitwise_or(tf.bitwise.bitwise_and(bits, 0x7FFFFF), 0x3F800000)
    return tf.bitcast(one_to_two, tf.float32) - 1.0


# Which of an example's seeds feeds which random draw.
_MASKING, _SAMPLING = 0, 1


def _split(seed, stream):
    """The example seed of one random stream (masking or sampling)."""
    return tf.random.experimental.stateless_split(seed, 2, alg=RNG_ALG)[stream]


def example_seeds(run_seed, first_example, batch_size):
    """[B, 2] int64 seeds for examples first_example .. first_example + B − 1 of a run."""
    index = tf.cast(first_example, tf.int64) + tf.range(batch_size, dtype=tf.int64)
    return tf.stack([tf.fill([batch_size], tf.cast(run_seed, tf.int64)), index], axis=1)
