"""The Electric objective by value: NumPy on a tiny fixed batch, from the networks' raw outputs.

The networks are called directly; everything the objective adds to their outputs (the
cloze loss over the candidate tokens, `+ log q(x_t)` and the log-prior
`log(mask_prob / (1 - mask_prob))` in the discriminator logits, the Electric labels, the
discriminator's masked mean and the weighted total) is recomputed here in NumPy.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import models as modeling
from electra_tf.config import PretrainingConfig
from electra_tf.pretraining import helpers, objective as objective_lib

CLS, SEP, MASK = 101, 102, 103
VOCAB = 300
# Two rows of 8 tokens; the second has 2 padding positions.
INPUT_IDS = np.array([[CLS, 210, 211, 212, 213, 214, 215, SEP],
                      [CLS, 220, 221, SEP, 222, 223, 0, 0]], np.int32)
INPUT_MASK = (INPUT_IDS > 0).astype(np.int32)
SEGMENT_IDS = np.array([[0] * 8, [0, 0, 0, 0, 1, 1, 0, 0]], np.int32)
# Chosen positions (distinct per row); the last slot of row 1 is unused (weight 0).
POSITIONS = np.array([[2, 4, 6], [1, 5, 0]], np.int32)
WEIGHTS = np.array([[1, 1, 1], [1, 1, 0]], np.float32)
# The "samples": row 0 slot 1 equals the original token (213), which ELECTRA would label
# real and Electric labels fake.
SAMPLES = np.array([[250, 213, 260], [270, 280, 0]], np.int32)


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def bce(logits, labels):
    """Sigmoid cross-entropy, the numerically stable form."""
    return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


@pytest.fixture(scope="module")
def electric():
    config = PretrainingConfig(
        "m", "d", vocab_size=VOCAB, max_seq_length=8, embedding_size=16,
        generator_hidden_size=0.5, electric_objective=True, electra_objective=False,
        model_hparam_overrides={"hidden_size": 32, "num_hidden_layers": 2,
                                "num_attention_heads": 2, "intermediate_size": 64})
    keras.utils.set_random_seed(0)
    return config, modeling.build_models(config)


def fixed_masking():
    masked_ids = INPUT_IDS.copy()
    masked_ids[0, 2] = masked_ids[1, 5] = MASK  # [MASK] at some chosen positions
    return helpers.MaskedInputs(
        tf.constant(masked_ids), tf.constant(INPUT_MASK), tf.constant(SEGMENT_IDS),
        tf.constant(POSITIONS), tf.constant(np.take_along_axis(INPUT_IDS, POSITIONS, 1)),
        tf.constant(WEIGHTS))


def run(config, models):
    objective = objective_lib.Objective(config, models)
    features = {"input_ids": INPUT_IDS, "input_mask": INPUT_MASK, "segment_ids": SEGMENT_IDS}
    return objective(features, helpers.example_seeds(1, 0, 2), masked=fixed_masking(),
                     sample=lambda logits, seeds, disallow: tf.constant(SAMPLES))


def test_electric_objective_by_value(electric):
    config, models = electric
    out = run(config, models)
    features = {"input_mask": INPUT_MASK, "segment_ids": SEGMENT_IDS}
    # The two-tower generator reads the original (unmasked) tokens.
    cloze_logits = models.generator(dict(features, input_ids=INPUT_IDS))["logits"].numpy()
    log_probs = log_softmax(cloze_logits)  # [B, S, V]

    # Cloze loss: NLL of every real token except [CLS]/[SEP], over the candidate count.
    candidates = (INPUT_MASK == 1) & ~np.isin(INPUT_IDS, [CLS, SEP, MASK])
    nll = -np.take_along_axis(log_probs, INPUT_IDS[..., None], -1)[..., 0]
    cloze_loss = (nll * candidates).sum() / (candidates.sum() + 1e-6)
    np.testing.assert_allclose(out["cloze"]["loss"], cloze_loss, rtol=1e-5)
    # The MLM output (sampling, metrics) is the cloze logits at the chosen positions.
    np.testing.assert_allclose(out["mlm"]["logits"],
                               np.take_along_axis(cloze_logits, POSITIONS[..., None], 1),
                               rtol=1e-6, atol=1e-6)

    # Fake input: the samples written at the chosen positions (weight-0 slots untouched).
    fake = INPUT_IDS.copy()
    for row, col in zip(*np.nonzero(WEIGHTS)):
        fake[row, POSITIONS[row, col]] = SAMPLES[row, col]
    np.testing.assert_array_equal(out["fake_input_ids"], fake)
    # Electric labels: every chosen position is fake, even where the sample is the original.
    labels = np.zeros_like(INPUT_IDS)
    for row, col in zip(*np.nonzero(WEIGHTS)):
        labels[row, POSITIONS[row, col]] = 1
    assert fake[0, 4] == INPUT_IDS[0, 4] and labels[0, 4] == 1
    np.testing.assert_array_equal(out["disc"]["labels"], labels)

    # Discriminator logits: raw + log q(x_t) (q = the cloze softmax at the token present in
    # the discriminator's input) + log(p / (1 - p)) = -1.7346 for p = 0.15.
    raw = models.discriminator(dict(features, input_ids=fake))["logits"].numpy()
    log_q = np.take_along_axis(log_probs, fake[..., None], -1)[..., 0]
    log_prior = np.log(0.15 / 0.85)
    assert log_prior == pytest.approx(-1.7346, abs=1e-4)
    disc_logits = raw + log_q + log_prior
    np.testing.assert_allclose(out["disc"]["logits"], disc_logits, rtol=1e-5, atol=1e-5)

    # Discriminator loss: token-level mean over real tokens; then the weighted total.
    losses = bce(disc_logits, labels) * INPUT_MASK
    disc_loss = losses.sum() / (INPUT_MASK.sum() + 1e-6)
    np.testing.assert_allclose(out["disc"]["loss"], disc_loss, rtol=1e-5)
    np.testing.assert_allclose(out["disc"]["per_example_loss"],
                               losses.sum(-1) / (INPUT_MASK.sum(-1) + 1e-6), rtol=1e-5)
    np.testing.assert_allclose(out["total_loss"], 1.0 * cloze_loss + 50.0 * disc_loss,
                               rtol=1e-5)


def test_log_q_is_not_trained_through_the_discriminator_loss(electric):
    """`+ stop_gradient(log q)`: the discriminator loss sends no gradient to the generator."""
    config, models = electric
    generator_only = [v for v in models.generator.trainable_weights
                      if all(v is not w for w in models.discriminator.trainable_weights)]
    with tf.GradientTape(persistent=True) as tape:
        out = run(config, models)
    grads = tape.gradient(out["disc"]["loss"], generator_only)
    assert generator_only and all(g is None for g in grads)
    assert any(g is not None for g in tape.gradient(out["cloze"]["loss"], generator_only))
