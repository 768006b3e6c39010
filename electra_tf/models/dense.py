"""`Dense`: Keras' dense layer; in inference one 2-D MatMul → BiasAdd → activation.

Written here because Keras' `Dense` multiplies a [batch, seq, width] input through
`tensordot` (a dozen shape ops around its MatMul) and adds the bias with AddV2, and
TensorFlow's graph optimiser (grappler's remapper) fuses MatMul → BiasAdd → activation
(ReLU, tanh, the exact or tanh GELU, ...) into one oneDNN call only when they follow each
other on a matrix. A short request spends much of its time in such small ops
(docs/benchmarks.md). The products and sums are Keras'; a fused GELU is evaluated by oneDNN,
whose erf differs from TensorFlow's by float32 rounding.

Training keeps Keras' forward product; its gradients are written out (`project`: the
float32 input gradient against a transposed copy of the kernel), as is the bias gradient
(`add_bias`); its exact GELU is `fused.gelu` (one XLA kernel each way).
"""

import keras
import tensorflow as tf

from electra_tf.models.fused import gelu
from electra_tf.models.numerics import exact_gelu


@tf.custom_gradient
def add_bias(y, bias):
    """`y + bias` over the last axis, the bias gradient a product with a row of ones.

    TensorFlow sums the rows of the output gradient with a column reduction that runs
    far below memory speed on CPU; as a [1, rows] × [rows, width] product (oneDNN) it is
    faster (docs/benchmarks.md). The same sum, in another order: float32 rounding.

    Args:
        y: [..., width].
        bias: [width], y's dtype.
    Returns:
        y + bias.
    """
    def grad(dy):
        rows = tf.reshape(dy, [-1, dy.shape[-1]])
        ones = tf.ones([1, tf.shape(rows)[0]], dy.dtype)
        return dy, tf.reshape(tf.matmul(ones, rows), [-1])

    return y + bias, grad


def unflatten(rows, like):
    """[N, width] rows back to `like`'s leading dimensions: [..., width], static where known."""
    width = rows.shape[-1]
    y = tf.reshape(rows, tf.concat([tf.shape(like)[:-1], [width]], axis=0))
    y.set_shape(like.shape[:-1].concatenate([width]))
    return y


@tf.custom_gradient
def project(x, kernel):
    """`x · kernel` over the last axis, as Keras' `tensordot` computes it (one 2-D MatMul).

    Its input gradient dy · kernelᵀ is, for a small float32 kernel wider than tall, a
    product with a transposed copy of the kernel: oneDNN's transposed-operand product runs
    1.3× slower than the copy's at ELECTRA-Small's 256 → 1024 (the copy costs 0.2 ms),
    while at Base's sizes the products are equally fast and copying 9 MB loses 5%; in
    bfloat16 the transposed operand is the faster one (docs/benchmarks.md). Either way the
    numbers are the same: oneDNN sums the same values in the same order (bit-identical,
    `tests/electra_tf/models/test_dense.py`). The copy is an `einsum` because grappler
    folds a `Transpose` back into the product's flag.

    Args:
        x: [..., in].
        kernel: [in, out], x's dtype.
    Returns:
        [..., out].
    """
    fan_in, fan_out = kernel.shape
    rows = tf.reshape(x, [-1, fan_in])
    y = unflatten(tf.matmul(rows, kernel), x)

    def grad(dy):
        dy_rows = tf.reshape(dy, [-1, fan_out])
        if kernel.dtype == tf.float32 and fan_in < fan_out and fan_in * fan_out <= 2**18:
            dx = tf.matmul(dy_rows, tf.einsum("ij->ji", kernel))
        else:
            dx = tf.matmul(dy_rows, kernel, transpose_b=True)
        return tf.reshape(dx, tf.shape(x)), tf.matmul(rows, dy_rows, transpose_a=True)

    return y, grad


@keras.saving.register_keras_serializable(package="electra_tf")
class Dense(keras.layers.Dense):
    """`keras.layers.Dense` (same arguments, variables and outputs), computed on a matrix.

    Example:
    ```python
    dense = Dense(4, activation=exact_gelu)
    y = dense(np.ones((2, 3, 8), "float32"))   # (2, 3, 4)
    ```
    """

    def call(self, inputs, training=None):
        if self.lora_enabled or self.quantization_mode:
            return super().call(inputs, training=training)
        if training:
            # Keras' product without the BiasAdd fusion: the MatMul → BiasAdd chain
            # measured 3% slower in a mixed_bfloat16 training step, no faster in float32.
            y = project(inputs, tf.cast(self.kernel, self.compute_dtype))
            if self.use_bias:
                y = add_bias(y, tf.cast(self.bias, self.compute_dtype))
        else:
            inputs = tf.convert_to_tensor(inputs)
            x = tf.reshape(inputs, [-1, inputs.shape[-1]]) if inputs.shape.rank != 2 else inputs
            y = tf.matmul(x, tf.cast(self.kernel, self.compute_dtype))
            if self.use_bias:
                y = tf.nn.bias_add(y, tf.cast(self.bias, self.compute_dtype))
        if training and self.activation is exact_gelu:
            y = gelu(y)
        elif self.activation is not None:
            y = self.activation(y)
        return y if training or inputs.shape.rank == 2 else unflatten(y, inputs)
