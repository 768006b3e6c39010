"""`bench/step_products.py`: the products it finds in a traced step, their FLOPs, and a
`--smoke` run."""

import pytest
import tensorflow as tf

import step_products  # bench/, on sys.path by tests/bench/conftest.py
from electra_tf.models.dense import Dense

Product = step_products.Product


def dense_step(dense):
    """A `tf.function` of one dense layer's forward and backward (input and kernel)."""
    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(dense(x, training=True))
        return tape.gradient(loss, [x, dense.kernel, dense.bias])
    return step


def test_a_dense_layer_step_has_its_forward_and_both_gradient_products():
    dense = Dense(6)
    dense.build((4, 3, 8))
    graph = dense_step(dense).get_concrete_function(tf.TensorSpec([4, 3, 8])).graph
    assert step_products.step_products(graph) == {
        Product((12, 8), (8, 6), False, False, "float32"): 1,  # forward
        Product((12, 6), (8, 6), False, True, "float32"): 1,   # input gradient
        Product((12, 8), (12, 6), True, False, "float32"): 1,  # kernel gradient
        Product((1, 12), (12, 6), False, False, "float32"): 1,  # bias gradient (add_bias)
    }


def test_flops_count_the_transposed_operands_and_the_batch():
    assert step_products.product_flops(Product((12, 8), (8, 6), False, False, "float32")) \
        == 2 * 12 * 6 * 8
    assert step_products.product_flops(Product((12, 8), (12, 6), True, False, "float32")) \
        == 2 * 8 * 6 * 12
    assert step_products.product_flops(
        Product((16, 4, 128, 64), (16, 4, 128, 64), False, True, "bfloat16")) \
        == 2 * 64 * 128 * 128 * 64
    assert step_products.describe(Product((12, 6), (8, 6), False, True, "float32")) \
        == "[12,6]·[8,6]ᵀ"


def test_a_product_of_unknown_shape_is_an_error_naming_it():
    dense = Dense(6)
    dense.build((None, 3, 8))
    graph = dense_step(dense).get_concrete_function(tf.TensorSpec([None, 3, 8])).graph
    with pytest.raises(ValueError, match="MatMul.*not fully known"):
        step_products.step_products(graph)


def test_smoke_run_times_every_product_of_the_step(tmp_path, capsys, machine_lines):
    timed, step = step_products.main(["--smoke", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    machine_lines(out)
    count = sum(n for n, _ in timed.values())
    assert f"{count} products in a training step, {len(timed)} distinct" in out
    assert "products alone: " in out and "% of the float32 matmul peak); the step: " in out
    assert step > 0
    assert all(seconds >= 0 for _, seconds in timed.values())
    # Every dense kernel of a one-layer model is used forward, and twice backward.
    forward = [p for p in timed if not p.transpose_a and not p.transpose_b
               and len(p.a_shape) == 2 and p.a_shape[0] > 1]
    assert len(forward) >= 5
