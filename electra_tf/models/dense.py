"""`Dense`: Keras' dense layer; in inference one 2-D MatMul → BiasAdd → activation.

Written here because Keras' `Dense` multiplies a [batch, seq, width] input through
`tensordot` (a dozen shape ops around its MatMul) and adds the bias with AddV2, and
TensorFlow's graph optimiser (grappler's remapper) fuses MatMul → BiasAdd → activation
(ReLU, tanh, the exact or tanh GELU, ...) into one oneDNN call only when they follow each
other on a matrix. A short request spends much of its time in such small ops
(docs/benchmarks.md). The products and sums are Keras'; a fused GELU is evaluated by oneDNN,
whose erf differs from TensorFlow's by float32 rounding.

Training keeps Keras' products, except the bias gradient (`add_bias`); its exact GELU is
`fused.gelu` (one XLA kernel each way).
"""

import keras
import tensorflow as tf
from keras import ops

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
            # Keras' products: the MatMul → BiasAdd chain measured 3% slower in a
            # mixed_bfloat16 training step, and no faster in float32.
            y = ops.matmul(inputs, self.kernel)
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
        if training or inputs.shape.rank == 2:
            return y
        y = tf.reshape(y, tf.concat([tf.shape(inputs)[:-1], [self.units]], axis=0))
        y.set_shape(inputs.shape[:-1].concatenate([self.units]))
        return y
