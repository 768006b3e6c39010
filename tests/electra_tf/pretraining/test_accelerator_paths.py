"""What accelerators run, proven on CPU: a pretraining step under XLA equals the eager step,
mixed-precision steps stay within their dtype's rounding of float32, and dynamic loss
scaling skips an overflowing update, halves the scale, then recovers.

Each comparison runs the same seeded run twice from the same initial weights on the same
batches (`run_steps`); only the setting under test differs.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.optimization import adam_weight_decay
from electra_tf.pretraining import trainer as training
from electra_tf.training import step as step_lib
from tests.electra_tf.pretraining.test_trainer import TINY_MODEL, data_dir, tiny_hparams

__all__ = ["data_dir"]  # the fixture

STEPS = 2
# float32 under XLA: XLA fuses and reorders the reductions, so a sum of n float32 terms may
# round differently (relative error ~ n·2^-24 ≈ 1e-5 for the longest sums here, V = 1024);
# measured 3e-7 on the losses.
XLA_RTOL = 1e-5
# Adam divides each gradient entry by its own RMS, so the rounding of a near-zero entry
# carries into its update undamped: updates agree to 1e-4 of the learning rate (lr = 1e-3;
# measured 4e-8 after two steps).
UPDATE_ATOL = 1e-4 * 1e-3
# Mixed precision: each matmul output is rounded to 16 bits, so a loss computed from them
# carries relative errors of the order of the type's unit roundoff (2^-8 for bfloat16,
# 2^-11 for float16); independent roundings mostly cancel in the sums (measured: 1.4e-4 and
# 3e-5 after two steps).
UNIT_ROUNDOFF = {"mixed_bfloat16": 2.0 ** -8, "mixed_float16": 2.0 ** -11}


def run_steps(data_dir, name, steps=STEPS, dropout=0.0, **hparams):
    """Runs `steps` updates of a tiny pretraining run, one `train_loop` call each.

    Returns:
        (the losses of each step, [{name: weights} before the first step and after each]).
    """
    model = dict(TINY_MODEL, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    # No warm-up: every update moves the weights by a full learning rate.
    config = PretrainingConfig(name, str(data_dir), **tiny_hparams(
        num_warmup_steps=0, model_hparam_overrides=model, **hparams))
    trainer = training.Pretrainer(config, log=lambda line: None)
    weights = lambda: {n: m.variable.numpy() for n, m in trainer.names.items()}  # noqa: E731
    iterator = trainer.input_iterator(config.train_batch_size, trainer.run_seed)
    train_loop = trainer.make_train_loop()
    losses, states = [], [weights()]
    for _ in range(steps):
        losses.append({k: float(v) for k, v in train_loop(iterator, tf.constant(1)).items()})
        states.append(weights())
    return losses, states


def assert_weights_close(actual, expected):
    """Each weight within `XLA_RTOL` of itself, or its updates within `UPDATE_ATOL`."""
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=XLA_RTOL,
                                   atol=UPDATE_ATOL, err_msg=name)


def assert_losses_close(actual, expected, rtol):
    for step, (a, e) in enumerate(zip(actual, expected)):
        for key in e:
            assert a[key] == pytest.approx(e[key], rel=rtol), (step, key, a[key], e[key])


@pytest.fixture(scope="module")
def eager(data_dir):
    """The float32 eager reference, dropout off."""
    return run_steps(data_dir, "eager")


def test_an_xla_step_equals_the_eager_step(data_dir, eager):
    losses, states = run_steps(data_dir, "xla", jit_compile=True)
    assert_losses_close(losses, eager[0], XLA_RTOL)
    for state, expected in zip(states, eager[1]):
        assert_weights_close(state, expected)


def test_an_xla_step_with_dropout_equals_the_eager_step(data_dir):
    """With dropout on, XLA draws the same masking, sampling and dropout masks."""
    eager = run_steps(data_dir, "dropout-eager", dropout=0.1)
    losses, states = run_steps(data_dir, "dropout-xla", dropout=0.1, jit_compile=True)
    assert_losses_close(losses, eager[0], XLA_RTOL)
    for state, expected in zip(states, eager[1]):
        assert_weights_close(state, expected)


def _first_update(states):
    return np.concatenate([(states[1][n] - states[0][n]).ravel() for n in sorted(states[0])])


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_step_is_close_to_float32(data_dir, eager, precision):
    losses, states = run_steps(data_dir, precision, precision=precision)
    # 4 unit roundoffs: 27x (bfloat16) and 16x (float16) the errors measured.
    assert_losses_close(losses, eager[0], 4 * UNIT_ROUNDOFF[precision])
    # Adam's first update moves each weight by ~±lr·3 whatever the size of its gradient, so
    # an entry whose gradient is ~0 (the attention key biases: exactly 0 in exact
    # arithmetic) may move either way in 16 bits. Measured ‖Δ16 − Δ32‖ / ‖Δ32‖: 1.1e-2
    # (bfloat16), 1.4e-3 (float16); allowed: 8 unit roundoffs.
    ours, reference = _first_update(states), _first_update(eager[1])
    assert (np.linalg.norm(ours - reference) / np.linalg.norm(reference)
            < 8 * UNIT_ROUNDOFF[precision])
    assert all(a.dtype == np.float32 for a in states[-1].values())


def test_dynamic_loss_scaling_skips_an_overflow_halves_the_scale_and_recovers(monkeypatch):
    """mixed_float16: a float16 gradient that overflows skips the update and halves the
    scale; the next finite updates apply the unscaled gradient; after the configured number
    of finite steps the scale doubles (and here overflows again)."""
    growth = 3
    monkeypatch.setattr(adam_weight_decay, "LOSS_SCALE_GROWTH_STEPS", growth)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        layer = keras.layers.Dense(1, use_bias=False)
        layer.build((None, 4))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    inputs = tf.constant([[0.5, -0.25, 0.125, 0.5]])
    # The float16 gradient of the output is the loss scale itself: 2^16 > 65504, the largest
    # float16, overflows; 2^15 does not.
    optimizer = adam_weight_decay.AdamWeightDecay(
        1e-2, dynamic_loss_scale=True, initial_loss_scale=2.0 ** 16)
    optimizer.set_original_names({"kernel": layer.kernel})
    optimizer.build([layer.kernel])

    @tf.function
    def train_step():
        def loss_fn():
            loss = tf.cast(tf.reduce_sum(layer(inputs)), tf.float32)
            return loss, loss

        return step_lib.train_step(loss_fn, optimizer, [layer.kernel])

    def state():
        return (layer.kernel.numpy().copy(), optimizer.adam_m["kernel"].numpy().copy(),
                int(optimizer.iterations.numpy()), float(optimizer.loss_scale.numpy()))

    kernel, m, iterations, _ = state()
    train_step()  # scale 2^16: overflow
    new_kernel, new_m, new_iterations, scale = state()
    np.testing.assert_array_equal(new_kernel, kernel)
    np.testing.assert_array_equal(new_m, m)
    assert (new_iterations, scale) == (0, 2.0 ** 15)
    for step in range(1, growth + 1):  # scale 2^15: finite
        previous = layer.kernel.numpy().copy()
        train_step()
        kernel, m, iterations, scale = state()
        assert iterations == step
        assert not np.array_equal(kernel, previous)
        assert scale == (2.0 ** 15 if step < growth else 2.0 ** 16)
    # The gradient was unscaled: d loss / d kernel = inputs, and m = Σ (1 − β1)·β1^k·g.
    expected_m = sum(0.1 * 0.9 ** k for k in range(growth)) * inputs.numpy().T
    np.testing.assert_allclose(m, expected_m, rtol=2.0 ** -11)
    train_step()  # scale 2^16 again: overflow, skipped, halved
    assert state()[2:] == (growth, 2.0 ** 15)
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)
