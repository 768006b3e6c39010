"""Endpoints: a served network, the function naming its outputs, and its text signatures.

An `Endpoint` is everything one network contributes to an export: `outputs` (int32
features → named output tensors, traced once as the `<name>_ids` signature), the raw-text
signatures that feed it (`TextSignature`s, each tokenising its string inputs in the graph;
the first one is also served on serialized tf.Examples), the id ranges its embedding
tables accept (checked on every request) and, for classifiers and regressors, the outputs
of TF Serving's Classify / Regress APIs. This module has
the endpoints of a pretraining model directory; a higher layer adds its own (fine-tuned
tasks define theirs in `finetune.serving`).
"""

import dataclasses
from typing import Callable

import tensorflow as tf

from electra_tf.scoring.energy import electric_scores


@dataclasses.dataclass
class TextSignature:
    """One raw-text signature of an endpoint: `<endpoint name>_<suffix>`.

    Attributes:
        suffix: the signature name's suffix ("text", "pair", ...); None: the signature is
            called as the endpoint.
        inputs: the names of its string inputs, each [batch].
        encode: the string tensors (in `inputs` order) → (int32 features [batch, seq],
            extras): the features the network reads and whatever `finish` needs.
        finish: optional; (outputs so far: features, `tokens` and the endpoint's outputs;
            extras) → more named outputs (e.g. an answer span mapped back to the text).
        example: one request's texts, one list per input (the warm-up record's).
    """

    suffix: str | None
    inputs: tuple
    encode: Callable
    example: tuple
    finish: Callable | None = None


def single_text(text_encoder, suffix="text"):
    """`text` → `[CLS] text [SEP]`."""
    return TextSignature(suffix, ("text",), lambda text: (text_encoder.encode(text), None),
                         (["The quick brown fox jumps over the lazy dog."],))


def pair_text(text_encoder, suffix="pair"):
    """`text_a`, `text_b` → `[CLS] a [SEP] b [SEP]`, truncated longest-first."""
    return TextSignature(suffix, ("text_a", "text_b"),
                         lambda a, b: (text_encoder.encode(a, b), None),
                         (["The quick brown fox."], ["It jumps over the lazy dog."]))


def masked_text(text_encoder, suffix="text"):
    """`text` in which each literal "[MASK]" is the [MASK] token."""
    return TextSignature(suffix, ("text",),
                         lambda text: (text_encoder.encode_masked(text), None),
                         (["The quick brown [MASK] jumps over the lazy dog."],))


@dataclasses.dataclass
class Endpoint:
    """One served network.

    Attributes:
        name: the signature prefix (`<name>_<suffix>` for text, `<name>_ids`).
        outputs: int32 features dict [batch, seq] → dict of named output tensors.
        text_signatures: the endpoint's `TextSignature`s.
        model: the Keras model(s) whose variables `outputs` uses (tracked for saving).
        vocab_size: `input_ids` must be in [0, vocab_size) (the word embedding rows).
        type_vocab_size: `segment_ids` must be in [0, type_vocab_size) (token type rows).
        classify: optional; the first text signature's outputs → `classes` string [batch,
            n] and `scores` float32 [batch, n]: the endpoint also gets `<name>_classify`,
            for TF Serving's Classify API.
        regress: optional; those outputs → `outputs` float32 [batch]: the endpoint also
            gets `<name>_regress`, for TF Serving's Regress API.
    """

    name: str
    outputs: Callable[[dict], dict]
    text_signatures: list
    model: object
    vocab_size: int
    type_vocab_size: int
    classify: Callable | None = None
    regress: Callable | None = None


def id_ranges(encoder):
    """(vocab_size, type_vocab_size) of an `Encoder`: the ids its embeddings accept."""
    return encoder.vocab_size, encoder.type_vocab_size


def discriminator_endpoint(discriminator, text_encoder):
    """Per token: the replaced-token logit and probability; the features (float32).

    Outputs: `logits`, `replaced_probability` [batch, seq]; `sequence_output` [batch,
    seq, H]; `pooled_output` [batch, H] (the [CLS] vector: ELECTRA has no pooler). Padded
    positions are computed like the rest (the attention mask covers keys only): ignore
    them with `input_mask`.
    """
    def outputs(features):
        out = discriminator(features, training=False)
        logits = tf.cast(out["logits"], tf.float32)
        return {"logits": logits, "replaced_probability": tf.sigmoid(logits),
                "sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "pooled_output": tf.cast(out["pooled_output"], tf.float32)}

    return Endpoint("discriminator", outputs,
                    [single_text(text_encoder), pair_text(text_encoder)], discriminator,
                    *id_ranges(discriminator.encoder))


def score_endpoint(discriminator, text_encoder):
    """Electric's text score (`electra_tf.scoring`): the signature `score` (raw text) and
    `score_ids`, `score_examples`.

    Outputs: `token_scores` float32 [batch, seq] (−energy, the unnormalised log p(x_t |
    rest), of every token but [CLS], [SEP] and padding; 0 there), `scored` bool [batch,
    seq] (which tokens count) and `score` float32 [batch] (their sum: the text's
    pseudo-log-likelihood, up to the normalisers).
    """
    def outputs(features):
        return electric_scores(discriminator, features, text_encoder.cls_id,
                               text_encoder.sep_id)

    return Endpoint("score", outputs, [single_text(text_encoder, suffix=None)], discriminator,
                    *id_ranges(discriminator.encoder))


def encoder_endpoint(encoder, text_encoder):
    """The encoder's features only (a model directory without a discriminator head)."""
    def outputs(features):
        out = encoder(features, training=False)
        return {k: tf.cast(out[k], tf.float32) for k in ("sequence_output", "pooled_output")}

    return Endpoint("encoder", outputs,
                    [single_text(text_encoder), pair_text(text_encoder)], encoder,
                    *id_ranges(encoder))


def masked_positions(input_ids, mask_id):
    """Positions of [MASK] per row, padded with 0, and their weights (1 real, 0 padding).

    Returns:
        (`masked_lm_positions` int32 [batch, max masks], `masked_lm_weights` float32).
    """
    is_mask = tf.equal(input_ids, mask_id)
    positions = tf.ragged.boolean_mask(
        tf.broadcast_to(tf.range(tf.shape(input_ids)[1]), tf.shape(input_ids)), is_mask)
    return positions.to_tensor(), tf.cast(tf.ones_like(positions).to_tensor(), tf.float32)


def generator_endpoint(generator, text_encoder, top_k):
    """The generator's top-k predictions at the [MASK] positions of each input.

    Outputs: `masked_lm_positions` int32 [batch, M] (M = most [MASK]s in a row of the
    batch, padded with 0), `masked_lm_weights` float32 [batch, M] (0 on padding),
    `top_k_ids` int32 [batch, M, k], `top_k_tokens` string and `top_k_probabilities`
    float32 [batch, M, k] (softmax over the vocabulary, highest first).

    Args:
        generator: a `Generator` or `TwoTowerGenerator`.
        text_encoder: the export's `TextEncoder`.
        top_k: predictions per position.
    """
    def outputs(features):
        positions, weights = masked_positions(features["input_ids"], text_encoder.mask_id)
        if hasattr(generator, "encoder"):  # only the masked positions go through the head
            sequence_output = generator.encoder(features, training=False)["sequence_output"]
            logits = generator.head(sequence_output, positions)
        else:
            logits = tf.gather(generator(features, training=False)["logits"], positions,
                               batch_dims=1)
        probabilities, ids = tf.math.top_k(tf.nn.softmax(tf.cast(logits, tf.float32)), top_k)
        return {"masked_lm_positions": positions, "masked_lm_weights": weights,
                "top_k_ids": ids, "top_k_tokens": text_encoder.tokens(ids),
                "top_k_probabilities": probabilities}

    # Electric's towers share one vocabulary and token type table size.
    encoder = generator.encoder if hasattr(generator, "encoder") else generator.ltr_encoder
    return Endpoint("generator", outputs, [masked_text(text_encoder)], generator,
                    *id_ranges(encoder))
