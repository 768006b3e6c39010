"""The pretraining objective: masking, scatter, sampling, labels and losses."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import models as modeling
from electra_tf.models.encoder import INPUT_NAMES
from electra_tf.pretraining import helpers, objective as objective_lib
from electra_tf.config import PretrainingConfig
from tests.conftest import FIXTURES

TINY = FIXTURES / "original-tiny"
IDS = {"[CLS]": 101, "[SEP]": 102, "[MASK]": 103}


def SEEDS(batch, run_seed=1, first=0):  # noqa: N802
    return helpers.example_seeds(run_seed, first, batch)


@pytest.fixture(scope="module")
def inputs():
    return dict(np.load(TINY / "inputs.npz"))


@pytest.fixture(scope="module")
def full():
    return dict(np.load(TINY / "outputs_full_model.npz"))


def fixed_masking(inputs):
    """The fixture's masking: the tail of the original `mask()` with fixed choices."""
    replace = inputs["masked_lm_positions"] * inputs["replace_with_mask"]
    masked_ids, _ = helpers.scatter_update(
        tf.constant(inputs["input_ids"]), tf.fill(replace.shape, 103), tf.constant(replace))
    return helpers.MaskedInputs(
        masked_ids, tf.constant(inputs["input_mask"]), tf.constant(inputs["segment_ids"]),
        tf.constant(inputs["masked_lm_positions"]), tf.constant(inputs["masked_lm_ids"]),
        tf.constant(inputs["masked_lm_weights"]))


def test_objective_reproduces_original_full_model(tiny_loaded, inputs, full):
    objective = objective_lib.Objective(tiny_loaded.config, tiny_loaded.models)
    features = {k: inputs[k] for k in INPUT_NAMES}
    out = objective(features, SEEDS(4), masked=fixed_masking(inputs),
                    sample=lambda logits, seed, disallow: tf.constant(inputs["sampled_tokids"]))
    np.testing.assert_array_equal(out["masked"].input_ids, full["masked_input_ids"])
    np.testing.assert_array_equal(out["fake_input_ids"], full["fake_input_ids"])
    np.testing.assert_array_equal(out["sampled_tokids"], full["sampled_tokids"])
    np.testing.assert_array_equal(out["disc"]["labels"], full["disc.labels"])
    np.testing.assert_array_equal(out["mlm"]["preds"], full["gen.mlm_preds"])
    np.testing.assert_array_equal(out["disc"]["preds"], full["disc.preds"])
    close = dict(atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(out["mlm"]["logits"], full["gen.mlm_logits"], **close)
    np.testing.assert_allclose(out["mlm"]["per_example_loss"], full["gen.mlm_per_example_loss"],
                               **close)
    np.testing.assert_allclose(out["mlm"]["loss"], full["gen.mlm_loss"], **close)
    np.testing.assert_allclose(out["disc"]["logits"], full["disc.logits"], **close)
    np.testing.assert_allclose(out["disc"]["probs"], full["disc.probs"], atol=1e-6)
    np.testing.assert_allclose(out["disc"]["per_example_loss"], full["disc.per_example_loss"],
                               **close)
    np.testing.assert_allclose(out["disc"]["loss"], full["disc.loss"], **close)
    np.testing.assert_allclose(out["total_loss"], full["total_loss"], **close)
    assert abs(float(out["total_loss"]) - 24.079037) < 1e-4


def test_scatter_update_semantics():
    sequence = tf.constant([[10, 11, 12, 13]])
    updated, mask = helpers.scatter_update(
        sequence, tf.constant([[1000, 3001, 7, 5]]), tf.constant([[2, 2, 0, 3]]))
    # position 2 hit twice: floor of the mean; position 0 ignored; position 3 written.
    np.testing.assert_array_equal(updated, [[10, 11, 2000, 5]])
    np.testing.assert_array_equal(mask, [[0, 0, 1, 1]])
    floats, _ = helpers.scatter_update(tf.zeros([1, 3, 2]), tf.constant([[[1., 2.], [3., 4.]]]),
                                           tf.constant([[1, 1]]))
    np.testing.assert_allclose(floats[0, 1], [2.0, 3.0])


def _batch(batch=64, seq=32, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, seq + 1, batch)
    ids = rng.integers(200, 1000, (batch, seq)).astype(np.int32)
    mask = (np.arange(seq)[None] < lengths[:, None]).astype(np.int32)
    ids[:, 0] = 101
    ids[np.arange(batch), lengths - 1] = 102
    ids *= mask
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


def test_masking_statistics():
    features = _batch(batch=256)
    counts = dict(selected=0, masked=0, duplicates_rows=0)
    for step in range(8):
        m = helpers.mask(features, 0.15, 4, IDS, SEEDS(256, 7, 256 * step))
        positions, weights = m.masked_lm_positions.numpy(), m.masked_lm_weights.numpy()
        num_tokens = features["input_mask"].sum(-1)
        expected = np.maximum(1, np.minimum(4, np.round(num_tokens * 0.15)))  # half-to-even
        np.testing.assert_array_equal(weights.sum(-1), expected)
        for row in range(256):
            chosen = positions[row, weights[row] > 0]
            assert np.all(features["input_mask"][row, chosen] == 1)
            assert not np.isin(features["input_ids"][row, chosen], [101, 102, 103]).any()
            np.testing.assert_array_equal(m.masked_lm_ids.numpy()[row, weights[row] > 0],
                                          features["input_ids"][row, chosen])
            counts["duplicates_rows"] += len(set(chosen.tolist())) < len(chosen)
            ids = m.input_ids.numpy()[row]
            counts["selected"] += len(chosen)
            counts["masked"] += int((ids[chosen] == 103).sum())
        assert np.all(positions[weights == 0] == 0)
    share = counts["masked"] / counts["selected"]
    assert 0.83 < share < 0.90, share  # 85% [MASK] (~0.86 counting duplicates twice)
    assert counts["duplicates_rows"] > 0  # drawn with replacement


def test_mask_count_rounds_half_to_even():
    # 10 real tokens · 0.15 = 1.5 → 2; 30 · 0.15 = 4.5 → 4; 17 · 0.15 = 2.55 → 3.
    features = _batch(batch=3, seq=40)
    features["input_mask"] = np.array([[1] * n + [0] * (40 - n) for n in (10, 30, 17)],
                                      np.int32)
    m = helpers.mask(features, 0.15, 6, IDS, SEEDS(3))
    np.testing.assert_array_equal(m.masked_lm_weights.numpy().sum(-1), [2, 4, 3])


def test_masking_is_reproducible_per_example():
    features = _batch()
    a = helpers.mask(features, 0.15, 4, IDS, SEEDS(64, 3))
    b = helpers.mask(features, 0.15, 4, IDS, SEEDS(64, 3))
    c = helpers.mask(features, 0.15, 4, IDS, SEEDS(64, 4))
    np.testing.assert_array_equal(a.input_ids, b.input_ids)
    assert not np.array_equal(a.masked_lm_positions, c.masked_lm_positions)
    # An example's masking does not depend on the rest of its batch.
    half = {k: v[32:] for k, v in features.items()}
    d = helpers.mask(half, 0.15, 4, IDS, SEEDS(32, 3, first=32))
    np.testing.assert_array_equal(d.input_ids, a.input_ids[32:])


def test_gumbel_sampling_follows_the_softmax():
    logits = tf.math.log(tf.constant([[0.7, 0.2, 0.1, 0.0]]))
    logits = tf.tile(logits, [20000, 1])
    logits = tf.reshape(logits, [200, 100, 4])
    samples = helpers.sample_from_softmax(logits, SEEDS(200)).numpy().ravel()
    freq = np.bincount(samples, minlength=4) / len(samples)
    np.testing.assert_allclose(freq, [0.7, 0.2, 0.1, 0.0], atol=0.015)
    disallow = tf.one_hot(tf.zeros([200, 100], tf.int32), 4)
    samples = helpers.sample_from_softmax(logits, SEEDS(200), disallow).numpy()
    assert not np.any(samples == 0)


def test_discriminator_loss_is_a_token_level_mean():
    logits = tf.constant([[2.0, -1.0, 0.0], [0.5, 0.0, 0.0]])
    labels = tf.constant([[1, 0, 0], [0, 0, 0]])
    mask = tf.constant([[1, 1, 1], [1, 0, 0]])
    out = objective_lib.discriminator_output(logits, labels, mask)
    bce = lambda z, y: np.log1p(np.exp(-abs(z))) + max(z, 0) - z * y  # noqa: E731
    rows = [[bce(2.0, 1), bce(-1.0, 0), bce(0.0, 0)], [bce(0.5, 0)]]
    np.testing.assert_allclose(out["loss"], sum(map(sum, rows)) / (4 + 1e-6), rtol=1e-6)
    np.testing.assert_allclose(out["per_example_loss"],
                               [sum(rows[0]) / (3 + 1e-6), rows[1][0] / (1 + 1e-6)], rtol=1e-6)
    np.testing.assert_array_equal(out["preds"], [[1, 0, 0], [1, 0, 0]])  # logit 0 → real


@pytest.mark.parametrize("hparams", [
    {}, {"untied_generator": False}, {"electra_objective": False},
    {"uniform_generator": True}, {"electric_objective": True, "electra_objective": False},
    {"disallow_correct": True, "temperature": 0.5}])
def test_every_variant_runs_and_has_gradients(hparams):
    config = PretrainingConfig("m", "d", vocab_size=1000, max_seq_length=32, embedding_size=16,
                               generator_hidden_size=0.5, model_hparam_overrides={
                                   "hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 64},
                               **hparams)
    models = modeling.build_models(config)
    objective = objective_lib.Objective(config, models)
    variables = {id(v): v for m in (models.generator, models.discriminator, models.encoder)
                 if m is not None for v in m.trainable_weights}
    with tf.GradientTape() as tape:
        out = objective(_batch(batch=4), SEEDS(4), training=True)
    grads = tape.gradient(out["total_loss"], list(variables.values()))
    assert np.isfinite(float(out["total_loss"]))
    if config.uniform_generator:
        np.testing.assert_allclose(out["mlm"]["loss"], np.log(1000), rtol=1e-5)
    if config.electra_objective or config.electric_objective:
        labels = out["disc"]["labels"].numpy()
        fake = out["fake_input_ids"].numpy() != unmasked(out)
        if config.electric_objective:
            assert labels.sum() >= fake.sum()
        else:
            np.testing.assert_array_equal(labels, fake.astype(np.int32))
    missing = [v.path for v, g in zip(variables.values(), grads) if g is None]
    if not config.uniform_generator:
        assert not missing, missing


def unmasked(out):
    return helpers.unmask(out["masked"]).numpy()


# Philox-4x32-10 (Salmon et al., SC 2011) as TensorFlow seeds it: a NumPy transcription, so
# the expected draws do not come from TensorFlow.
PHILOX_M, PHILOX_W = (0xD2511F53, 0xCD9E8D57), (0x9E3779B9, 0xBB67AE85)


def _philox_block(counter, key):
    c, k = list(counter), list(key)
    for _ in range(10):
        p0, p1 = PHILOX_M[0] * c[0], PHILOX_M[1] * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & 0xFFFFFFFF, (p0 >> 32) ^ c[3] ^ k[1], p0 & 0xFFFFFFFF]
        k = [(k[i] + PHILOX_W[i]) & 0xFFFFFFFF for i in range(2)]
    return c


def philox_bits(n, seed):
    """The first n uint32 of `stateless_uniform(..., dtype=uint32, alg="philox")`."""
    words = [w for s in seed for w in (int(s) & 0xFFFFFFFF, (int(s) >> 32) & 0xFFFFFFFF)]
    mixed = _philox_block(words, (0x3EC8F720, 0x02461E29))  # the seed → key, counter
    key, counter = mixed[:2], mixed[2] << 64 | mixed[3] << 96
    out = []
    while len(out) < n:
        out += _philox_block([(counter >> (32 * i)) & 0xFFFFFFFF for i in range(4)], key)
        counter += 1
    return np.array(out[:n], np.uint64)


def philox_split(seed, stream):
    """`stateless_split(seed, 2, alg="philox")[stream]`: int64s of two words, low first."""
    words = [int(w) for w in philox_bits(8, seed)[4 * stream:4 * stream + 4]]
    values = [words[i] | words[i + 1] << 32 for i in (0, 2)]
    return [v - (1 << 64) if v >> 63 else v for v in values]


def philox_uniform(shape, seed):
    """The low 23 bits of each word, as the CPU kernels make a float32 in [0, 1)."""
    bits = philox_bits(int(np.prod(shape)), seed)
    return ((bits & np.uint64(0x7FFFFF)).astype(np.float64) / 2 ** 23).reshape(shape)


def test_masking_and_sampling_draw_philox_numbers_from_the_example_seed():
    """The draws are a fixed function of each example's seed, the same on every platform:
    a NumPy transcription of Philox and of `mask` / `sample_from_softmax` gives them."""
    features, n, vocab = _batch(batch=3, seq=16), 4, 20
    seeds = SEEDS(3, run_seed=11, first=5).numpy()
    m = helpers.mask(features, 0.5, n, IDS, seeds)
    logits = np.random.default_rng(0).normal(size=(3, n, vocab)).astype(np.float32)
    samples = helpers.sample_from_softmax(tf.constant(logits), seeds).numpy()
    for row, seed in enumerate(seeds):
        position_seed, mask_seed = (philox_split(philox_split(seed, 0), i) for i in (0, 1))
        ids = features["input_ids"][row]
        candidates = (features["input_mask"][row] == 1) & ~np.isin(ids, [101, 102, 103])
        scores = np.where(candidates, philox_uniform((n, 16), position_seed), -1.0)
        weights = m.masked_lm_weights.numpy()[row]
        positions = np.argmax(scores, -1) * (weights > 0)
        np.testing.assert_array_equal(m.masked_lm_positions.numpy()[row], positions)
        masked = ids.copy()
        replaced = positions[philox_uniform((n,), mask_seed) < 0.85]
        masked[replaced[replaced > 0]] = 103
        np.testing.assert_array_equal(m.input_ids.numpy()[row], masked)
        u = philox_uniform((n, vocab), philox_split(seed, 1)).astype(np.float32)
        gumbel = -np.log(-np.log(u + np.float32(1e-9)) + np.float32(1e-9))
        np.testing.assert_array_equal(samples[row], np.argmax(logits[row] + gumbel, -1))


def test_masking_and_sampling_are_the_same_under_xla():
    features = {k: tf.constant(v) for k, v in _batch(batch=64).items()}
    seeds = SEEDS(64, 3)
    logits = tf.random.stateless_normal([64, 19, 1000], [1, 2]) * 3

    def draw(features, seeds, logits):
        m = helpers.mask(features, 0.15, 19, IDS, seeds)
        return (m.masked_lm_positions, m.input_ids,
                helpers.sample_from_softmax(logits, seeds, tf.one_hot(m.masked_lm_ids, 1000)))

    eager = draw(features, seeds, logits)
    compiled = tf.function(draw, jit_compile=True)(features, seeds, logits)
    for a, b in zip(eager, compiled):
        np.testing.assert_array_equal(a, b)
    # The uniforms themselves: the same bits, and TF's own on CPU.
    uniform = helpers.uniform([1000], tf.constant([3, 5]))
    np.testing.assert_array_equal(
        uniform, tf.function(helpers.uniform, jit_compile=True)([1000], tf.constant([3, 5])))
    np.testing.assert_array_equal(uniform, tf.random.stateless_uniform([1000], [3, 5],
                                                                       alg="philox"))
