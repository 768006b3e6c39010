"""`Dense`: Keras' dense layer computed as MatMul → BiasAdd → activation on a matrix."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.models import numerics
from electra_tf.models.dense import Dense, add_bias, project


def pair(activation, units=6, width=8):
    """Our `Dense` and Keras' with the same weights."""
    ours = Dense(units, activation=activation)
    theirs = keras.layers.Dense(units, activation=activation)
    for layer in (ours, theirs):
        layer.build((None, width))
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(width, units)).astype("float32"),
               rng.normal(size=(units,)).astype("float32")]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs


@pytest.mark.parametrize("activation", [None, numerics.exact_gelu, "tanh", "relu"])
@pytest.mark.parametrize("shape", [(5, 8), (2, 3, 8), (2, 1, 3, 8)])
def test_outputs_are_keras_dense_eager_and_in_a_graph(activation, shape):
    ours, theirs = pair(activation)
    x = np.random.default_rng(1).normal(size=shape).astype("float32") * 2
    expected = theirs(x).numpy()
    assert ours(x).shape == expected.shape
    np.testing.assert_allclose(ours(x), expected, rtol=1e-6, atol=1e-6)
    # In a graph with a dynamic batch, grappler may fuse the chain into one oneDNN call.
    graph = tf.function(lambda x: ours(x),
                        input_signature=[tf.TensorSpec((None,) + shape[1:], tf.float32)])
    np.testing.assert_allclose(graph(x), expected, rtol=1e-6, atol=1e-6)
    symbolic = ours(keras.Input(shape[1:]))
    assert tuple(symbolic.shape) == (None,) + shape[1:-1] + (6,)


def test_training_runs_the_exact_gelu_of_the_fused_kernel_with_its_gradient():
    ours, theirs = pair(numerics.exact_gelu)
    x = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 8)).astype("float32"))
    grads = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.range(1.0, 7.0))
        grads.append((y, *tape.gradient(loss, [x] + layer.trainable_variables)))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_the_graph_is_matmul_biasadd_activation_without_tensordot():
    ours, _ = pair(numerics.exact_gelu)
    graph = tf.function(lambda x: ours(x)).get_concrete_function(
        tf.TensorSpec((None, None, 8), tf.float32)).graph
    ops = [op.type for op in graph.get_operations()]
    assert "BiasAdd" in ops and ops.index("MatMul") < ops.index("BiasAdd") < ops.index("Erfc")
    assert "AddV2" not in ops[:ops.index("BiasAdd")] and "GatherV2" not in ops


def test_mixed_precision_computes_in_the_compute_dtype():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = Dense(4, activation=numerics.exact_gelu)
        y = layer(np.ones((2, 3, 8), "float32"), training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.dtype == tf.bfloat16 and layer.kernel.dtype == "float32"


@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-6), ("bfloat16", 2 ** -8)])
def test_the_bias_gradient_is_the_sum_of_the_output_gradient_rows(dtype, rtol):
    rng = np.random.default_rng(3)
    y = tf.constant(rng.normal(size=(3, 5, 4)), dtype)
    bias = tf.constant(rng.normal(size=(4,)), dtype)
    weights = rng.normal(size=(3, 5, 4))
    with tf.GradientTape() as tape:
        tape.watch([y, bias])
        out = add_bias(y, bias)
        loss = tf.reduce_sum(tf.cast(out, "float64") * weights)
    dy, dbias = tape.gradient(loss, [y, bias])
    np.testing.assert_allclose(tf.cast(out, "float64"), tf.cast(y + bias, "float64"))
    np.testing.assert_allclose(tf.cast(dy, "float64"), weights, rtol=rtol)
    np.testing.assert_allclose(tf.cast(dbias, "float64"), weights.sum(axis=(0, 1)),
                               rtol=4 * rtol, atol=4 * rtol)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("fan_in, fan_out, copies", [(256, 1024, True), (1024, 256, False),
                                                      (768, 3072, False)])
def test_project_gives_tensordots_product_and_gradients_bit_for_bit(dtype, fan_in, fan_out,
                                                                     copies):
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=(2, 8, fan_in)), dtype)
    kernel = tf.constant(rng.normal(size=(fan_in, fan_out)), dtype)
    weights = tf.constant(rng.normal(size=(2, 8, fan_out)), dtype)

    def run(product):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = product(x, kernel)
            loss = tf.reduce_sum(y * weights)
        return (y, *tape.gradient(loss, [x, kernel]))

    ours = tf.function(lambda: run(project))
    theirs = tf.function(lambda: run(lambda x, k: tf.tensordot(x, k, axes=[[-1], [0]])))
    for a, b in zip(ours(), theirs()):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy().astype("float32"), b.numpy().astype("float32"))
    # The input gradient takes a transposed copy only for a small float32 kernel wider than tall.
    ops = {op.type for op in ours.get_concrete_function().graph.get_operations()}
    assert ("Einsum" in ops) == (copies and dtype == "float32")
