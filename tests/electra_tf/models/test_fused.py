"""The fused training kernels compute what the op-by-op layers compute."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.models import fused
from electra_tf.models.attention import SelfAttention
from electra_tf.models.transformer import TransformerLayer


def value_and_grads(fn, inputs):
    """fn(*inputs) and the gradients of Σ fn · weights w.r.t. every input."""
    weights = None
    with tf.GradientTape() as tape:
        for x in inputs:
            tape.watch(x)
        y = fn(*inputs)
        weights = tf.cast(tf.sin(tf.range(tf.size(y), dtype=tf.float32)), tf.float32)
        loss = tf.reduce_sum(tf.reshape(tf.cast(y, tf.float32), [-1]) * weights)
    return y, tape.gradient(loss, inputs)


def test_gelu_is_the_exact_erf_form_and_its_derivative():
    x = tf.constant(np.linspace(-6, 6, 1203, dtype="float32").reshape(3, 401))
    y, (dx,) = value_and_grads(fused.gelu, [x])
    v = x.numpy().astype("float64")
    cdf = 0.5 * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))
    pdf = np.exp(-v * v / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(y, v * cdf, rtol=1e-6, atol=1e-7)
    weights = np.sin(np.arange(v.size)).reshape(v.shape)
    np.testing.assert_allclose(dx, weights * (cdf + v * pdf), rtol=1e-5, atol=1e-7)


def test_gelu_in_bfloat16_is_float32_gelu_rounded_once():
    x = tf.random.stateless_normal([64, 32], [1, 2]) * 3
    y = fused.gelu(tf.cast(x, tf.bfloat16))
    assert y.dtype == tf.bfloat16
    expected = tf.cast(fused.gelu(tf.cast(tf.cast(x, tf.bfloat16), tf.float32)), tf.bfloat16)
    np.testing.assert_array_equal(tf.cast(y, tf.float32), tf.cast(expected, tf.float32))


def test_dropout_add_layer_norm_without_dropout_is_keras_layer_norm():
    layer_norm = keras.layers.LayerNormalization(epsilon=1e-12)
    layer_norm.build((None, 16))
    layer_norm.gamma.assign(np.linspace(0.5, 1.5, 16))
    layer_norm.beta.assign(np.linspace(-0.2, 0.2, 16))
    no_dropout = keras.layers.Dropout(0.0)
    x = tf.random.stateless_normal([2, 5, 16], [3, 4])
    residual = tf.random.stateless_normal([2, 5, 16], [5, 6])
    gamma, beta = layer_norm.gamma, layer_norm.beta

    def ours(x, residual):
        return fused.dropout_add_layer_norm(x, residual, layer_norm, no_dropout)

    def reference(x, residual):
        return layer_norm(x + residual)

    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, residual])
        y, y_ref = ours(x, residual), reference(x, residual)
        w = tf.sin(tf.range(160, dtype=tf.float32))
        loss, loss_ref = (tf.reduce_sum(tf.reshape(v, [-1]) * w) for v in (y, y_ref))
    np.testing.assert_allclose(y, y_ref, atol=2e-6)
    for a, b in zip(tape.gradient(loss, [x, residual, gamma, beta]),
                    tape.gradient(loss_ref, [x, residual, gamma, beta])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)


def test_dropout_keeps_one_minus_rate_scaled_and_draws_per_call():
    layer_norm = keras.layers.LayerNormalization(epsilon=1e-12, center=True, scale=True)
    layer_norm.build((None, 4096))
    dropout = keras.layers.Dropout(0.25, seed=7)
    # A constant row of ones: after dropout, the row's kept fraction sets its mean.
    ones = tf.ones([1, 4096])
    mask = fused.dropout_mask([1, 4096], 0.25, tf.constant([1, 2]))
    assert 0.73 < float(tf.reduce_mean(tf.cast(mask, tf.float32))) < 0.77
    a = fused.dropout_add_layer_norm(ones, 0 * ones, layer_norm, dropout)
    b = fused.dropout_add_layer_norm(ones, 0 * ones, layer_norm, dropout)
    assert not np.array_equal(a, b), "each call draws a new mask"
    # Two values only (dropped, kept ×1/(1−rate)), normalised.
    assert len(np.unique(np.round(a.numpy(), 4))) == 2


def test_dropout_masks_are_the_same_with_and_without_xla():
    seed = tf.constant([11, 12])
    eager = fused.dropout_mask([8, 64], 0.1, seed)
    compiled = tf.function(lambda s: fused.dropout_mask([8, 64], 0.1, s),
                           jit_compile=True)(seed)
    np.testing.assert_array_equal(eager, compiled)


@pytest.mark.parametrize("policy, atol", [("float32", 5e-6), ("mixed_bfloat16", 0.07)])
def test_transformer_layer_training_path_equals_inference_path_without_dropout(policy, atol):
    """The fused kernels change no number beyond float rounding (dropout off)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = TransformerLayer(4, 64, hidden_dropout_prob=0.0,
                                 attention_probs_dropout_prob=0.0)
        x = tf.random.stateless_normal([2, 6, 32], [7, 8])
        mask = tf.constant([[[1] * 6], [[1] * 4 + [0] * 2]])
        layer(x, mask)
        train, train_grads = value_and_grads(lambda x: layer(x, mask, training=True)[0], [x])
        infer, infer_grads = value_and_grads(lambda x: layer(x, mask, training=False)[0], [x])
    finally:
        keras.mixed_precision.set_global_policy(previous)
    f32 = lambda t: tf.cast(t, tf.float32).numpy()  # noqa: E731
    np.testing.assert_allclose(f32(train), f32(infer), atol=atol)
    np.testing.assert_allclose(f32(train_grads[0]), f32(infer_grads[0]), atol=atol * 10)


def test_attention_probabilities_in_training_equal_inference_without_dropout():
    attention = SelfAttention(2, attention_probs_dropout_prob=0.0)
    x = tf.random.stateless_normal([2, 5, 8], [9, 10])
    mask = tf.constant([[[1, 1, 1, 0, 0]], [[1, 1, 1, 1, 1]]])
    out_train, probs_train = attention(x, mask, training=True)
    out_infer, probs_infer = attention(x, mask, training=False)
    np.testing.assert_allclose(probs_train, probs_infer, atol=1e-7)
    np.testing.assert_allclose(out_train, out_infer, atol=1e-6)
    assert float(tf.reduce_max(probs_train[0, :, :, 3:])) < 1e-4, "padded keys masked"


def test_the_dropout_layer_is_keras_dropout_with_philox_masks():
    dropout = fused.Dropout(0.5, seed=3)
    x = np.ones((4, 256), "float32")
    assert np.array_equal(dropout(x, training=False), x)
    y = dropout(x, training=True).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    assert 0.4 < (y == 0).mean() < 0.6
    assert not np.array_equal(y, dropout(x, training=True)), "a new mask per call"
    with pytest.raises(ValueError, match="noise_shape"):
        fused.Dropout(0.5, noise_shape=(1, 256))(x, training=True)


def test_dropout_mask_is_philox_bits_halves_against_the_threshold():
    """A NumPy transcription of Philox-4x32-10 gives the mask: the algorithm is pinned (the
    default, `auto_select`, may choose another one on GPU or TPU)."""
    from tests.electra_tf.pretraining.test_objective import philox_bits  # noqa: PLC0415

    seed, rate, shape = (21, 22), 0.3, (3, 7)
    bits = np.array(philox_bits(11, seed), dtype=np.uint64)
    halves = np.concatenate([bits >> 16, bits & 0xFFFF])[:21]
    expected = (halves >= round(rate * 2**16)).reshape(shape)
    np.testing.assert_array_equal(fused.dropout_mask(shape, rate, tf.constant(seed)), expected)
