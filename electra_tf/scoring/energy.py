"""Electric's one-pass text score: −energy of every token, from the discriminator.

Electric trains the discriminator with noise-contrastive estimation (`pretraining.objective`
step 4): the logit of "this token is noise" is `D(x)_t + log q(x_t | x_\\t) + log(p / (1 −
p))`, p = `mask_prob`. NCE with k noise tokens among n and noise distribution q has exactly
the logit log(k·q) − log((n − k)·exp(−E(x)_t)) = E(x)_t + log q + log(k / (n − k)), so the
raw output D(x)_t *is* the energy E(x)_t and −D(x)_t is the unnormalised log p(x_t | x_\\t).
docs/scoring.md has the derivation.
"""

import tensorflow as tf


def scored_positions(features, cls_id, sep_id):
    """bool [B, S]: the real tokens (`input_mask`) other than [CLS] and [SEP]."""
    input_ids = tf.cast(features["input_ids"], tf.int32)
    special = tf.logical_or(tf.equal(input_ids, cls_id), tf.equal(input_ids, sep_id))
    return tf.logical_and(tf.cast(features["input_mask"], tf.bool), tf.logical_not(special))


def text_scores(token_values, scored):
    """The scores dict of per-token log-probabilities.

    Args:
        token_values: float [B, S], a (possibly unnormalised) log p of every token.
        scored: bool [B, S], the tokens that count (`scored_positions`).
    Returns:
        {"token_scores": float32 [B, S] (0 where not scored), "score": float32 [B] (their
        sum), "scored": bool [B, S]}.
    """
    token_scores = tf.where(scored, tf.cast(token_values, tf.float32), 0.0)
    return {"token_scores": token_scores, "score": tf.reduce_sum(token_scores, axis=-1),
            "scored": scored}


def electric_scores(discriminator, features, cls_id, sep_id):
    """Electric's scores of a batch in one forward pass of the discriminator.

    Pure TensorFlow: usable eagerly, in a `tf.function` and in a SavedModel signature.

    Args:
        discriminator: the `Discriminator` of an Electric-trained model directory.
        features: dict of int `input_ids`, `input_mask`, `segment_ids` [B, S].
        cls_id, sep_id: the ids of [CLS] and [SEP] (not scored).
    Returns:
        `text_scores` of −D(x): `token_scores` float32 [B, S] = −energy, the unnormalised
        log p(x_t | x_\\t), of each real token but [CLS] / [SEP] (0 elsewhere); `score`
        float32 [B], their sum (the text's pseudo-log-likelihood up to the normalisers);
        `scored` bool [B, S].

    Example:
    ```python
    scores = electric_scores(loaded.discriminator, features, cls_id=101, sep_id=102)
    scores["score"]   # one float per text; higher = more likely
    ```
    """
    features = {name: tf.cast(features[name], tf.int32)
                for name in ("input_ids", "input_mask", "segment_ids")}
    energy = discriminator(features, training=False)["logits"]
    return text_scores(-energy, scored_positions(features, cls_id, sep_id))
