"""The training step's elementwise chains, each compiled by XLA into one pass over memory.

Written here because neither Keras nor keras-hub fuses them: TensorFlow runs the exact-erf
GELU, its gradient, and dropout → residual add → LayerNorm op by op, one pass over the
activations per op (in bfloat16, a conversion per op too), and on CPU those passes cost as
much as the matmuls between them. Each function below is one XLA cluster for the forward
pass and one for the backward pass, computed in float32 whatever the input dtype.

The arithmetic is the original's (`gelu`: 0.5·x·erfc(−x/√2); LayerNorm: `tf.nn.moments`,
ε = 1e-12, x·inv + (β − mean·inv) with inv = γ/√(var + ε)); XLA's erfc and rsqrt differ
from TensorFlow's kernels by float32 rounding only (tests/electra_tf/models/test_fused.py).
Only training calls them: inference, and therefore every exported SavedModel, keeps plain
TensorFlow ops, which every TF Serving build runs.

Dropout here draws integers with Philox explicitly (`philox.random_bits`: TensorFlow's bits,
one XLA pass on CPU) and compares 16-bit halves of them with an integer threshold
(`dropout_mask`): XLA and TensorFlow's kernels then give the same mask for the same seed on
every platform (their default algorithms differ, and so do their integer-to-float
conversions). `Dropout` is the layer of the models and heads that does so.
"""

import math

import keras
import tensorflow as tf

from electra_tf.models.numerics import ATTENTION_MASK_ADDER
from electra_tf.models.philox import random_bits

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@tf.function(jit_compile=True)
def _gelu_forward(x):
    x32 = tf.cast(x, tf.float32)
    return tf.cast(0.5 * x32 * tf.math.erfc(-x32 * _SQRT_HALF), x.dtype)


@tf.function(jit_compile=True)
def _gelu_backward(x, dy):
    """d/dx of 0.5·x·erfc(−x/√2) = Φ(x) + x·φ(x), times dy."""
    x32 = tf.cast(x, tf.float32)
    cdf = 0.5 * tf.math.erfc(-x32 * _SQRT_HALF)
    pdf = tf.exp(-0.5 * x32 * x32) * _INV_SQRT_2PI
    return tf.cast(tf.cast(dy, tf.float32) * (cdf + x32 * pdf), x.dtype)


@tf.custom_gradient
def gelu(x):
    """The original's exact (erf) GELU, forward and gradient each one XLA kernel.

    Args:
        x: a float tensor (float32, bfloat16 or float16; computed in float32).
    Returns:
        GELU(x), in x's dtype.
    """
    return _gelu_forward(x), lambda dy: _gelu_backward(x, dy)


def dropout_mask(shape, rate, seed):
    """The keep-mask of dropout: each element kept with probability 1 − rate.

    Philox's raw 32-bit draws, each split into two 16-bit numbers, compared with
    round(rate·2¹⁶): half the random numbers of a float uniform (the dropped fraction is
    `rate` to 2⁻¹⁷; TensorFlow's float uniform resolves 2⁻²³). Integers, because XLA and
    TensorFlow's kernels give the same bits for the same seed but turn them into floats
    differently, so a float uniform would differ between them.

    Args:
        shape: the mask's shape.
        rate: the dropped fraction, a Python float in [0, 1).
        seed: int32 [2].
    Returns:
        bool tensor of `shape`.
    """
    shape = tf.convert_to_tensor(shape, tf.int32)
    size = tf.reduce_prod(shape)
    bits = random_bits((size + 1) // 2, seed)
    draws = tf.concat([tf.bitwise.right_shift(bits, 16), tf.bitwise.bitwise_and(bits, 0xFFFF)],
                      0)[:size]
    return tf.reshape(draws >= round(rate * 2**16), shape)


@tf.function(jit_compile=True)
def _dropout_add_layer_norm(x, residual, gamma, beta, seed, rate, epsilon):
    h = tf.cast(x, tf.float32)
    if rate > 0:
        h = tf.where(dropout_mask(tf.shape(h), rate, seed), h * (1.0 / (1.0 - rate)), 0.0)
    h += tf.cast(residual, tf.float32)
    mean, variance = tf.nn.moments(h, axes=[-1], keepdims=True)
    inv = tf.math.rsqrt(variance + epsilon) * gamma
    return tf.cast(h * inv + (beta - mean * inv), x.dtype)


@tf.function(jit_compile=True)
def _attention_probs(scores, attention_mask, scale, seed, rate):
    dtype = scores.dtype
    scores = tf.cast(scores, tf.float32) * scale
    mask = tf.expand_dims(tf.cast(attention_mask, tf.float32), axis=1)
    probs = tf.nn.softmax(scores + (1.0 - mask) * ATTENTION_MASK_ADDER, axis=-1)
    dropped = probs
    if rate > 0:
        dropped = tf.where(dropout_mask(tf.shape(probs), rate, seed),
                           probs * (1.0 / (1.0 - rate)), 0.0)
    return probs, tf.cast(dropped, dtype)


def attention_probs(scores, attention_mask, scale, dropout):
    """softmax(scores·scale + (1 − mask)·(−10000)) in float32, then dropout, in training.

    Args:
        scores: [B, heads, T, S] Q·Kᵀ in the compute dtype.
        attention_mask: [B, T or 1, S] 0/1.
        scale: 1/√d (1.0 when the query was scaled before the product).
        dropout: the `keras.layers.Dropout` on the probabilities (rate and seed).
    Returns:
        (float32 probabilities, the dropped probabilities in the scores' dtype).
    """
    return _attention_probs(scores, attention_mask, float(scale), _seed(dropout),
                            float(dropout.rate))


def _seed(dropout):
    """This call's seed from a Keras `Dropout`'s seed generator (its state advances as in
    Keras' own dropout); zeros without dropout."""
    if dropout.rate > 0:
        return tf.cast(dropout.seed_generator.next(), tf.int32)
    return tf.zeros([2], tf.int32)


def dropout_add_layer_norm(x, residual, layer_norm, dropout):
    """LayerNorm(dropout(x) + residual) in training, as one XLA kernel each way.

    Args:
        x: [..., H], the sublayer's output.
        residual: [..., H], the sublayer's input.
        layer_norm: the `keras.layers.LayerNormalization` whose γ, β and ε apply.
        dropout: the `keras.layers.Dropout` whose rate applies and whose seed generator
            gives this call's seed (so its state advances as Keras' dropout would).
    Returns:
        [..., H] in x's dtype.
    """
    return _dropout_add_layer_norm(
        x, residual, tf.convert_to_tensor(layer_norm.gamma),
        tf.convert_to_tensor(layer_norm.beta), _seed(dropout), float(dropout.rate),
        float(layer_norm.epsilon))


@tf.function(jit_compile=True)
def _dropout(x, seed, rate):
    kept = tf.cast(x, tf.float32) * (1.0 / (1.0 - rate))
    return tf.cast(tf.where(dropout_mask(tf.shape(x), rate, seed), kept, 0.0), x.dtype)


@keras.saving.register_keras_serializable(package="electra_tf")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` whose mask is `dropout_mask`'s (Philox, integer threshold):
    the same for the same seed with and without XLA and on every platform.

    Example:
    ```python
    dropout = Dropout(0.1, seed=1)
    y = dropout(np.ones((2, 8), "float32"), training=True)  # zeros or 1/0.9
    ```
    """

    def call(self, inputs, training=False):
        if self.noise_shape is not None:
            raise ValueError(f"{self.name}: noise_shape is not supported (one mask element "
                             "per input element)")
        if not training or self.rate == 0:
            return inputs
        return _dropout(inputs, _seed(self), float(self.rate))
