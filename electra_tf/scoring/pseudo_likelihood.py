"""Masked-LM pseudo-log-likelihood (Salazar et al. 2020), and Electric's one-pass cloze log q.

PLL(x) = Σ_t log p(x_t | x with position t masked): one copy of the text per scored token,
with that token replaced by [MASK], run through a generator (or the BERT-style MLM) in
batches. A text of n scored tokens costs n sequences, where Electric's score costs one.

Electric's two-tower generator never sees position t when it predicts it (its left tower
stops at t − 1, its right tower starts at t + 1), so its cloze log q(x_t | x_\\t) of every
token comes from one unmasked pass (`cloze_scores`) and equals its masked-copy PLL.
"""

import keras
import tensorflow as tf

from electra_tf.models import TwoTowerGenerator
from electra_tf.scoring.energy import scored_positions, text_scores

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")


def masked_copies(features, scored, mask_id):
    """One copy of its row per scored token, that token replaced by [MASK].

    Args:
        features: dict of int `input_ids`, `input_mask`, `segment_ids` [B, S].
        scored: bool [B, S], the tokens to score.
        mask_id: the id of [MASK].
    Returns:
        (copies: dict of int32 [M, S]; index: int32 [M, 2], the (row, position) each copy
        masks, row-major; targets: int32 [M], the token masked). M = number of scored.
    """
    features = {name: tf.cast(features[name], tf.int32) for name in FEATURE_NAMES}
    index = tf.cast(tf.where(scored), tf.int32)
    copies = {name: tf.gather(value, index[:, 0]) for name, value in features.items()}
    count = tf.shape(index)[0]
    at = tf.stack([tf.range(count), index[:, 1]], axis=1)
    copies["input_ids"] = tf.tensor_scatter_nd_update(copies["input_ids"], at,
                                                      tf.fill([count], mask_id))
    return copies, index, tf.gather_nd(features["input_ids"], index)


def sequence_model(generator):
    """The part of `generator` (a `Generator` or `TwoTowerGenerator`) up to its
    `sequence_output`, sharing its layers: its `head` then runs at one position only,
    instead of giving vocabulary logits at every position."""
    return keras.Model(generator.input, generator.output["sequence_output"])


def mlm_scores(generator, features, mask_id, cls_id, sep_id, batch_size=32):
    """Masked-LM pseudo-log-likelihood: log p of each token with it masked, batched.

    Pure TensorFlow (a `tf.while_loop` over chunks): wrap it in a `tf.function` for speed.

    Args:
        generator: a model directory's `generator` (an MLM `Generator`, or Electric's
            `TwoTowerGenerator`).
        features: dict of int `input_ids`, `input_mask`, `segment_ids` [B, S].
        mask_id, cls_id, sep_id: the ids of [MASK], [CLS] and [SEP].
        batch_size: masked copies per forward pass.
    Returns:
        As `energy.electric_scores`: `token_scores` float32 [B, S] (log p(x_t | x with t
        masked) of each real token but [CLS] / [SEP], 0 elsewhere), `score` [B] (the PLL),
        `scored` bool [B, S].
    """
    scored = scored_positions(features, cls_id, sep_id)
    copies, index, targets = masked_copies(features, scored, mask_id)
    encode = sequence_model(generator)
    count = tf.shape(targets)[0]

    def chunk(start, values):
        end = tf.minimum(start + batch_size, count)
        part = {name: value[start:end] for name, value in copies.items()}
        logits = generator.head(encode(part, training=False), index[start:end, 1:])[:, 0]
        log_probs = tf.gather(tf.nn.log_softmax(logits), targets[start:end], batch_dims=1)
        return end, tf.concat([values, log_probs], axis=0)

    _, values = tf.while_loop(lambda start, _: start < count, chunk,
                              (tf.constant(0), tf.zeros([0])),
                              shape_invariants=(tf.TensorShape([]), tf.TensorShape([None])))
    token_values = tf.scatter_nd(index, values, tf.shape(scored))
    return text_scores(token_values, scored)


def cloze_scores(generator, features, cls_id, sep_id):
    """Electric's cloze log q(x_t | x_\\t) of every token from one pass of its two-tower
    generator (equal to `mlm_scores` of that generator, at 1/n of the cost).

    Args:
        generator: a `TwoTowerGenerator`.
        features, cls_id, sep_id: as `mlm_scores`.
    Returns:
        As `mlm_scores`.
    Raises:
        ValueError: `generator` is a masked LM, which must see [MASK] (use `mlm_scores`).
    """
    if not isinstance(generator, TwoTowerGenerator):
        raise ValueError(f"cloze scores need Electric's two-tower generator, got "
                         f"{type(generator).__name__}: a masked LM must see [MASK] at the "
                         "token it predicts; use mlm_scores")
    features = {name: tf.cast(features[name], tf.int32) for name in FEATURE_NAMES}
    logits = generator(features, training=False)["logits"]
    log_q = tf.gather(tf.nn.log_softmax(logits), features["input_ids"], batch_dims=2)
    return text_scores(log_q, scored_positions(features, cls_id, sep_id))
