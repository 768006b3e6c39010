"""The original optimizer against a NumPy transcription, and its original-format state."""

import json
import math
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints, optimization
from tests.conftest import FIXTURES, REPO

TOL = 1e-6


# A float64 NumPy transcription of the original optimizer, written from its description
# (docs/optimizer.md) alone.
def spec_lr(step, lr, total, warmup, power=1.0):
    """The warm-up factor multiplies the polynomially decayed LR."""
    decayed = lr * (1.0 - min(step, total) / total) ** power
    return decayed * min(1.0, step / warmup) if warmup else decayed


def spec_decayed(name):
    """Excluded when re.search finds "LayerNorm", "layer_norm" or "bias"."""
    return not any(re.search(r, name) for r in ("LayerNorm", "layer_norm", "bias"))


def spec_clip(grads, clip_norm=1.0):
    """tf.clip_by_global_norm: one norm over every gradient."""
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    return {n: g * (clip_norm / max(norm, clip_norm)) for n, g in grads.items()}


def spec_step(params, slots, grads, lr, weight_decay, multipliers=None):
    """One update of every variable. Returns new params and slots."""
    new_params, new_slots = {}, {}
    for name, theta in params.items():
        g = grads[name].astype(np.float64)
        m = 0.9 * slots[name]["adam_m"] + 0.1 * g
        v = 0.999 * slots[name]["adam_v"] + 0.001 * g * g
        update = m / (np.sqrt(v) + 1e-6)  # no bias correction, ε outside the root
        if spec_decayed(name):
            update = update + weight_decay * theta
        new_params[name] = theta - lr * (multipliers or {}).get(name, 1.0) * update
        new_slots[name] = {"adam_m": m, "adam_v": v}
    return new_params, new_slots


def spec_multiplier(name, decay, L):
    """Embeddings and projection decay^(L+2), layer k decay^(L+1−k), heads 1."""
    if "/embeddings/" in name or "/embeddings_project/" in name:
        return decay ** (L + 2)
    layer = re.search(r"encoder/layer_(\d+)/", name)
    if layer:
        return decay ** (L + 1 - int(layer.group(1)))
    assert name.startswith("task_specific/"), name
    return 1.0


def assert_close_all(ours, expected, what):
    for name in expected:
        np.testing.assert_allclose(ours[name], expected[name], rtol=0, atol=TOL,
                                   err_msg=f"{what}: {name}")


SYNTHETIC = {  # original name -> shape; a mix of decayed and excluded names
    "electra/embeddings/word_embeddings": (6, 4),
    "electra/embeddings/LayerNorm/gamma": (4,),
    "electra/embeddings_project/kernel": (4, 5),
    "electra/encoder/layer_0/attention/self/query/bias": (5,),
    "electra/encoder/layer_1/output/dense/kernel": (5, 5),
    "task_specific/mnli/dense/kernel": (5, 3),
    "task_specific/squad/layer_norm/beta": (3,),
    "task_specific/squad/output_bias": (3,),
}


@pytest.mark.parametrize("layerwise", [False, True])
def test_several_updates_match_the_spec_transcription(layerwise):
    rng = np.random.RandomState(0)
    params = {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in SYNTHETIC.items()}
    variables = {n: keras.Variable(p, name=n.replace("/", "_")) for n, p in params.items()}
    lr, total, warmup, power, wd = 1e-2, 10, 3, (0.5 if layerwise else 1.0), 0.01
    optimizer = optimization.create_optimizer(
        lr, total, weight_decay_rate=wd, warmup_steps=warmup, lr_decay_power=power,
        layerwise_lr_decay_power=0.8 if layerwise else -1, n_transformer_layers=2,
        variables=variables)
    multipliers = {n: spec_multiplier(n, 0.8, 2) for n in SYNTHETIC} if layerwise else None
    step = tf.function(lambda grads: optimizer.apply(grads, list(variables.values())))
    expected = {n: p.astype(np.float64) for n, p in params.items()}
    slots = {n: {"adam_m": 0.0, "adam_v": 0.0} for n in SYNTHETIC}
    for t, scale in enumerate([3.0, 0.01, 1.0, 5.0, 0.1], start=1):  # clipped and not
        grads = {n: rng.normal(0, scale, s).astype(np.float32) for n, s in SYNTHETIC.items()}
        step([tf.constant(grads[n]) for n in variables])
        expected, slots = spec_step(expected, slots, spec_clip(grads),
                                    spec_lr(t, lr, total, warmup, power), wd, multipliers)
        global_step, our_slots = optimizer.original_state()
        assert global_step == t
        assert_close_all({n: v.numpy() for n, v in variables.items()}, expected, f"step {t}")
        for slot in ("adam_m", "adam_v"):
            assert_close_all({n: s[slot] for n, s in our_slots.items()},
                             {n: s[slot] for n, s in slots.items()}, f"{slot} step {t}")


@pytest.fixture(scope="module")
def tiny_copy(tiny_config, tiny_prefix):
    """A private copy of the fixture models (the session-wide `tiny_loaded` stays untouched)."""
    return checkpoints.load_original(tiny_prefix, tiny_config)


@pytest.fixture
def tiny(tiny_copy):
    """The copy, restored to the checkpoint's values after each test."""
    variables = checkpoints.variable_map(tiny_copy.models)
    saved = {n: m.variable.numpy() for n, m in variables.items()}
    yield tiny_copy
    for name, m in variables.items():
        m.variable.assign(saved[name])


def test_one_update_from_the_fixture_state_matches_the_spec(tiny, tiny_config, tiny_prefix,
                                                            tiny_hparams, tmp_path):
    reader = tf.train.load_checkpoint(tiny_prefix)
    variables = checkpoints.variable_map(tiny.models)
    assert len(variables) == 80 and tiny.global_step == 3
    optimizer = optimization.pretraining_optimizer(tiny_config, variables)
    optimizer.load_original_state(tiny.optimizer_slots, tiny.global_step)

    rng = np.random.RandomState(20240614)
    grads = {n: rng.normal(0, 1, m.original_shape).astype(np.float32)
             for n, m in sorted(variables.items())}
    optimizer.apply([tf.constant(grads[n].reshape(m.variable.shape))
                     for n, m in variables.items()], [m.variable for m in variables.values()])

    # The spec on the checkpoint's own arrays; the update makes global_step 4 and uses lr(4).
    params = {n: reader.get_tensor(n).astype(np.float64) for n in variables}
    slots = {n: {s: reader.get_tensor(f"{n}/{s}").astype(np.float64)
                 for s in ("adam_m", "adam_v")} for n in variables}
    assert math.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values())) > 100
    lr = spec_lr(4, tiny_hparams["learning_rate"], tiny_hparams["num_train_steps"],
                 tiny_hparams["num_warmup_steps"])
    assert lr == pytest.approx(1e-3 * 0.96)
    expected, expected_slots = spec_step(params, slots, spec_clip(grads), lr, 0.01)

    assert_close_all({n: m.variable.numpy().reshape(m.original_shape)
                      for n, m in variables.items()}, expected, "variable")
    global_step, our_slots = optimizer.original_state()
    assert global_step == 4 and sorted(our_slots) == sorted(variables)
    for slot in ("adam_m", "adam_v"):
        assert_close_all({n: s[slot] for n, s in our_slots.items()},
                         {n: s[slot] for n, s in expected_slots.items()}, slot)

    # ... and it makes a full original checkpoint: 80 variables, 160 slots, the step.
    prefix = checkpoints.save_original(tiny.models, str(tmp_path / "model.ckpt"),
                                       global_step, our_slots)
    written = tf.train.load_checkpoint(prefix)
    assert len(written.get_variable_to_shape_map()) == 241
    assert written.get_tensor("global_step") == 4
    np.testing.assert_array_equal(
        written.get_tensor("electra/embeddings/word_embeddings/adam_v"),
        our_slots["electra/embeddings/word_embeddings"]["adam_v"])


def test_exactly_the_original_set_of_variables_is_decayed(tiny):
    listed = json.loads((FIXTURES / "original-tiny" / "checkpoint_variables.json").read_text())
    names = [v["name"] for v in listed["variables"]
             if v["name"] != "global_step" and not v["name"].endswith(("/adam_m", "/adam_v"))]
    assert len(names) == 80
    expected = {n for n in names if spec_decayed(n)}
    assert "electra/embeddings/word_embeddings" in expected
    assert "electra/embeddings_project/kernel" in expected
    assert "generator_predictions/output_bias" not in expected

    # Behaviourally: with zero gradients and zero slots only weight decay moves a variable.
    variables = checkpoints.variable_map(tiny.models)
    optimizer = optimization.AdamWeightDecay(1e-3, weight_decay_rate=0.01)
    optimizer.set_original_names(variables)
    before = {n: m.variable.numpy() for n, m in variables.items()}
    optimizer.apply([tf.zeros_like(m.variable) for m in variables.values()],
                    [m.variable for m in variables.values()])
    changed = {n for n, m in variables.items() if not np.array_equal(m.variable.numpy(),
                                                                     before[n])}
    assert changed == expected
    assert {n for n, m in variables.items() if optimizer.is_decayed(m.variable)} == expected
    kernel = variables["electra/encoder/layer_0/output/dense/kernel"].variable
    np.testing.assert_allclose(kernel.numpy(),
                               before["electra/encoder/layer_0/output/dense/kernel"]
                               .astype(np.float64) * (1 - 1e-3 * 0.01), rtol=0, atol=3e-8)


def test_schedule_values():
    schedule = optimization.WarmupPolynomialDecay(5e-4, 1_000_000, warmup_steps=10_000)
    assert float(schedule(0)) == 0.0
    assert float(schedule(10_000)) == pytest.approx(0.99 * 5e-4, rel=1e-6)
    assert float(schedule(5_000)) == pytest.approx(0.5 * 0.995 * 5e-4, rel=1e-6)
    assert float(schedule(500_000)) == pytest.approx(0.5 * 5e-4, rel=1e-6)
    assert float(schedule(1_000_000)) == 0.0 and float(schedule(2_000_000)) == 0.0
    # warmup = max(T·proportion, steps)
    assert optimization.WarmupPolynomialDecay(1.0, 100, warmup_proportion=0.1).warmup == 10
    assert optimization.WarmupPolynomialDecay(1.0, 100, 20, warmup_proportion=0.1).warmup == 20
    squared = optimization.WarmupPolynomialDecay(2.0, 10, power=2.0)  # no warm-up
    assert float(squared(0)) == 2.0 and float(squared(5)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="num_train_steps"):
        optimization.WarmupPolynomialDecay(1.0, 0)


def test_an_update_uses_the_step_it_produces():
    schedule = optimization.WarmupPolynomialDecay(1.0, 100, warmup_steps=10)
    variable = keras.Variable(np.ones(3, np.float32))
    optimizer = optimization.AdamWeightDecay(schedule)
    optimizer.set_original_names({"x/kernel": variable})
    assert float(optimizer.learning_rate) == pytest.approx(float(schedule(1)))
    optimizer.load_original_state({"x/kernel": {"adam_m": np.zeros(3),
                                                             "adam_v": np.zeros(3)}}, 3)
    assert float(optimizer.learning_rate) == pytest.approx(0.96 * 0.4)  # lr(4)


def test_layerwise_multipliers():
    def names(L):
        return (["electra/embeddings/word_embeddings", "electra/embeddings_project/kernel"]
                + [f"electra/encoder/layer_{k}/output/dense/kernel" for k in range(L)]
                + ["task_specific/mnli/dense/kernel"])

    lrs = optimization.layerwise_lr_multipliers(names(12), 0.8, 12)
    assert lrs["electra/embeddings/word_embeddings"] == pytest.approx(0.8 ** 14)
    assert lrs["electra/embeddings/word_embeddings"] == pytest.approx(0.04398, abs=1e-5)
    assert lrs["electra/embeddings_project/kernel"] == pytest.approx(0.8 ** 14)
    assert lrs["electra/encoder/layer_0/output/dense/kernel"] == pytest.approx(0.8 ** 13)
    assert lrs["electra/encoder/layer_1/output/dense/kernel"] == pytest.approx(0.8 ** 12)
    assert lrs["electra/encoder/layer_10/output/dense/kernel"] == pytest.approx(0.8 ** 3)
    assert lrs["electra/encoder/layer_11/output/dense/kernel"] == pytest.approx(0.64)
    assert lrs["task_specific/mnli/dense/kernel"] == 1.0
    large = optimization.layerwise_lr_multipliers(names(24), 0.9, 24)
    assert large["electra/embeddings/word_embeddings"] == pytest.approx(0.9 ** 26)
    assert large["electra/encoder/layer_23/output/dense/kernel"] == pytest.approx(0.81)
    with pytest.raises(ValueError, match="discriminator_predictions/dense/kernel"):
        optimization.layerwise_lr_multipliers(
            names(2) + ["discriminator_predictions/dense/kernel"], 0.8, 2)


def test_slots_round_trip_bit_identically(tiny):
    optimizer = optimization.pretraining_optimizer(tiny.config,
                                                   checkpoints.variable_map(tiny.models))
    optimizer.load_original_state(tiny.optimizer_slots, tiny.global_step)
    global_step, slots = optimizer.original_state()
    assert global_step == tiny.global_step
    assert sorted(slots) == sorted(tiny.optimizer_slots)
    for name, original in tiny.optimizer_slots.items():
        for slot in ("adam_m", "adam_v"):
            assert slots[name][slot].dtype == original[slot].dtype
            np.testing.assert_array_equal(slots[name][slot], original[slot])


def test_state_mismatches_and_missing_names_are_errors():
    a = keras.Variable(np.ones((2, 3), np.float32), name="a")
    zeros = {"adam_m": np.zeros((2, 3)), "adam_v": np.zeros((2, 3))}

    def fresh():
        optimizer = optimization.AdamWeightDecay(1e-3)
        optimizer.set_original_names({"x/kernel": a})
        return optimizer

    with pytest.raises(ValueError, match="does not track: y/kernel"):
        fresh().load_original_state({"x/kernel": zeros, "y/kernel": zeros}, 1)
    with pytest.raises(ValueError, match="no slots for x/kernel"):
        fresh().load_original_state({}, 1)
    with pytest.raises(ValueError, match=r"x/kernel/adam_m has shape \[3, 2\]"):
        fresh().load_original_state({"x/kernel": {"adam_m": np.zeros((3, 2)), "adam_v": np.zeros((2, 3))}}, 1)
    with pytest.raises(ValueError, match="no adam_v for x/kernel"):
        fresh().load_original_state({"x/kernel": {"adam_m": np.zeros((2, 3))}}, 1)
    b = keras.Variable(np.ones(2, np.float32), name="unnamed_b")
    with pytest.raises(ValueError, match="no original name for variable.*unnamed_b"):
        fresh().apply([tf.ones((2, 3)), tf.ones(2)], [a, b])


def test_slots_only_for_the_variables_the_optimizer_is_built_with():
    a, b = keras.Variable(np.ones(2, np.float32)), keras.Variable(np.ones(3, np.float32))
    optimizer = optimization.AdamWeightDecay(1e-3)
    optimizer.set_original_names({"x/kernel": a, "y/kernel": b})
    optimizer.apply([tf.ones(2)], [a])  # b got no gradient: no slots, as the original
    assert sorted(optimizer.original_state()[1]) == ["x/kernel"]
    # iterations, micro_steps, adam_m, adam_v: the model's variables are not its state
    assert len(optimizer.variables) == 4


def test_one_global_norm_over_all_gradients_as_tf_clip_by_global_norm():
    a, b = keras.Variable(np.ones(2, np.float32)), keras.Variable(np.ones(2, np.float32))
    grads = [tf.constant([3.0, 0.0]), tf.constant([0.0, 4.0])]  # global norm 5
    optimizer = optimization.AdamWeightDecay(1e-3, clip_norm=1.0)
    optimizer.set_original_names({"a/kernel": a, "b/kernel": b})
    optimizer.apply(grads, [a, b])
    clipped, _ = tf.clip_by_global_norm(grads, 1.0)
    m = optimizer.original_state()[1]
    np.testing.assert_array_equal(m["a/kernel"]["adam_m"], (1.0 - 0.9) * clipped[0].numpy())
    np.testing.assert_array_equal(m["b/kernel"]["adam_m"], (1.0 - 0.9) * clipped[1].numpy())
    np.testing.assert_allclose(m["b/kernel"]["adam_m"], [0.0, 0.1 * 4 / 5], rtol=1e-6)


def test_gradient_accumulation_averages_and_counts_updates():
    rng = np.random.RandomState(1)
    g1, g2 = (tf.constant(rng.normal(0, 3, (4, 2)).astype(np.float32)) for _ in range(2))
    schedule = optimization.WarmupPolynomialDecay(1e-2, 10, warmup_steps=2)

    def make(steps):
        variable = keras.Variable(np.full((4, 2), 0.5, np.float32))
        optimizer = optimization.AdamWeightDecay(schedule, weight_decay_rate=0.01,
                                                 clip_norm=1.0,
                                                 gradient_accumulation_steps=steps)
        optimizer.set_original_names({"x/kernel": variable})
        return variable, optimizer

    plain_var, plain = make(1)
    plain.apply([(g1 + g2) / 2], [plain_var])
    acc_var, acc = make(2)
    acc.apply([g1], [acc_var])
    np.testing.assert_array_equal(acc_var.numpy(), np.full((4, 2), 0.5, np.float32))
    acc.apply([g2], [acc_var])
    np.testing.assert_allclose(acc_var.numpy(), plain_var.numpy(), rtol=0, atol=1e-7)
    assert acc.original_state()[0] == 1  # updates, not micro-batches
    acc.load_original_state(acc.original_state()[1], 5)
    assert int(acc.micro_steps.numpy()) == 10 and int(acc.iterations.numpy()) == 5


def test_schedule_config_round_trips():
    schedule = optimization.WarmupPolynomialDecay(2e-4, 1000, warmup_steps=7,
                                                  warmup_proportion=0.1, power=0.5)
    again = optimization.WarmupPolynomialDecay.from_config(schedule.get_config())
    assert again.get_config() == schedule.get_config()
    assert float(again(50)) == float(schedule(50))


def test_tf_checkpoint_of_the_optimizer_restores_its_state(tmp_path):
    variable = keras.Variable(np.ones((2, 2), np.float32))

    def make():
        optimizer = optimization.AdamWeightDecay(1e-3, weight_decay_rate=0.01)
        optimizer.set_original_names({"x/kernel": variable})
        optimizer.build([variable])
        return optimizer

    optimizer = make()
    optimizer.apply([tf.fill((2, 2), 0.5)], [variable])
    path = tf.train.Checkpoint(optimizer=optimizer).write(str(tmp_path / "ckpt"))
    restored = make()
    tf.train.Checkpoint(optimizer=restored).read(path).assert_consumed()
    assert restored.original_state()[0] == 1
    np.testing.assert_array_equal(restored.original_state()[1]["x/kernel"]
                                  ["adam_v"], optimizer.original_state()[1]
                                  ["x/kernel"]["adam_v"])


def dense_model(dtype):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, dtype=dtype)])
    model.layers[0].kernel.assign(np.arange(6, dtype=np.float32).reshape(3, 2) / 10)
    names = {"head/dense/kernel": model.layers[0].kernel, "head/dense/bias": model.layers[0].bias}
    return model, names


def test_mixed_bfloat16_keeps_float32_state_and_the_update():
    model, names = dense_model("mixed_bfloat16")
    optimizer = optimization.AdamWeightDecay(1e-2, weight_decay_rate=0.01, clip_norm=1.0)
    optimizer.set_original_names(names)
    x = tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(model(x), tf.float32) ** 2)
    grads = tape.gradient(loss, list(names.values()))
    before = {n: v.numpy().astype(np.float64) for n, v in names.items()}
    optimizer.apply(grads, list(names.values()))
    assert all(v.dtype == "float32"
               for v in [*names.values(), *optimizer.adam_m.values(),
                         *optimizer.adam_v.values()])
    expected, _ = spec_step(before, {n: {"adam_m": 0.0, "adam_v": 0.0} for n in names},
                            spec_clip({n: g.numpy() for n, g in zip(names, grads)}), 1e-2, 0.01)
    assert_close_all({n: v.numpy() for n, v in names.items()}, expected, "bfloat16 step")


def test_dynamic_loss_scale_cancels_and_skips_overflowing_steps(monkeypatch):
    model, names = dense_model("mixed_float16")
    variables = list(names.values())
    optimizer = optimization.AdamWeightDecay(1e-2, weight_decay_rate=0.01, clip_norm=1.0,
                                             dynamic_loss_scale=True, initial_loss_scale=2.0 ** 8)
    optimizer.set_original_names(names)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 8
    x = tf.constant([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.cast(model(x), tf.float32) ** 2)
        scaled = optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, variables)
    before = [v.numpy() for v in variables]
    optimizer.apply(grads, variables)
    assert optimizer.original_state()[0] == 1

    # The same step without loss scaling: the power-of-two scale cancels exactly.
    plain_vars = [keras.Variable(b) for b in before]
    plain = optimization.AdamWeightDecay(1e-2, weight_decay_rate=0.01, clip_norm=1.0)
    plain.set_original_names(dict(zip(names, plain_vars)))
    plain.apply([g / 2.0 ** 8 for g in grads], plain_vars)
    for ours, theirs in zip(variables, plain_vars):
        assert ours.dtype == "float32"
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

    # An overflow (inf in one gradient): nothing moves, the step is not counted, the scale
    # halves; then finite steps grow it again after the growth interval.
    after_one = [v.numpy() for v in variables]
    slots = optimizer.original_state()[1]
    optimizer.apply([grads[0] * np.inf, grads[1]], variables)
    for value, variable in zip(after_one, variables):
        np.testing.assert_array_equal(variable.numpy(), value)
    step, slots_now = optimizer.original_state()
    assert step == 1 and float(optimizer.loss_scale.numpy()) == 2.0 ** 7
    for name in slots:
        np.testing.assert_array_equal(slots_now[name]["adam_m"], slots[name]["adam_m"])
    monkeypatch.setattr(optimization.adam_weight_decay, "LOSS_SCALE_GROWTH_STEPS", 2)
    optimizer.apply(grads, variables)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 7
    optimizer.apply(grads, variables)
    assert float(optimizer.loss_scale.numpy()) == 2.0 ** 8
    assert optimizer.original_state()[0] == 3


MIRRORED = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import keras, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from electra_tf import optimization

    rng = np.random.RandomState(0)
    x, y = rng.randn(8, 5).astype("float32"), rng.randn(8, 1).astype("float32")

    def run(strategy, accumulate):
        with strategy.scope():
            model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4),
                                      keras.layers.Dense(1)])
            model.set_weights([np.full(w.shape, 0.3, "float32") for w in model.get_weights()])
            optimizer = optimization.create_optimizer(
                1e-2, 10, warmup_steps=2, gradient_accumulation_steps=accumulate,
                variables={f"m/{i}/kernel": v for i, v in enumerate(model.trainable_variables)})
            optimizer.build(model.trainable_variables)

        @tf.function
        def step(xb, yb):
            def replica_step(xb, yb):
                with tf.GradientTape() as tape:  # the global-batch mean, ×100 so the clip acts
                    loss = tf.reduce_sum((model(xb) - yb) ** 2) * 100 / 8
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(grads, model.trainable_variables)
            strategy.run(replica_step, args=(xb, yb))

        batches = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
        for _ in range(4):
            for xb, yb in batches:
                step(xb, yb)
        return [v.numpy() for v in model.trainable_variables], \\
            optimizer.original_state()[0]

    for accumulate in (1, 2):
        one, steps_one = run(tf.distribute.get_strategy(), accumulate)
        two, steps_two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), accumulate)
        print(accumulate, steps_one, steps_two,
              max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)))
""")


def test_mirrored_strategy_step_equals_one_device():
    """The clip acts on the summed gradient, so 2 replicas equal one device (also accumulating)."""
    result = subprocess.run([sys.executable, "-c", MIRRORED], cwd=REPO, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert [line[:3] for line in lines] == [["1", "4", "4"], ["2", "2", "2"]]
    assert all(float(line[3]) < 1e-6 for line in lines), lines


SPARSE_MIRRORED = textwrap.dedent("""
    import os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import keras, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from electra_tf import optimization

    rng = np.random.RandomState(0)
    ids, y = rng.randint(0, 10, (8, 3)), rng.randn(8, 1).astype("float32")

    def run(strategy):
        with strategy.scope():
            embedding = keras.layers.Embedding(10, 4)  # its gradient is an IndexedSlices
            dense = keras.layers.Dense(1)
            dense(tf.reduce_mean(embedding(ids[:1]), 1))
            unused = keras.Variable(np.ones(3, "float32"))  # gets no gradient
            variables = [embedding.embeddings, dense.kernel, dense.bias, unused]
            for v, value in zip(variables, (0.3, 0.2, 0.1, 1.0)):
                v.assign(np.full(v.shape, value, "float32"))
            optimizer = optimization.create_optimizer(
                1e-2, 10, warmup_steps=2, precision="mixed_float16",
                variables={f"m/{i}/kernel": v for i, v in enumerate(variables)})
            optimizer.build(variables[:3])

        @tf.function
        def step(ib, yb):
            def replica_step(ib, yb):
                with tf.GradientTape() as tape:
                    out = dense(tf.reduce_mean(embedding(ib), 1))
                    loss = optimizer.scale_loss(tf.reduce_sum((out - yb) ** 2) * 100 / 8)
                optimizer.apply(tape.gradient(loss, variables), variables)
            strategy.run(replica_step, args=(ib, yb))

        batches = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((ids, y)).batch(8))
        for _ in range(4):
            for ib, yb in batches:
                step(ib, yb)
        # Each device's copy of every weight and Adam slot must have had the same update.
        state = [v.value for v in variables] + list(optimizer.slot_variables().values())
        copies = [getattr(v, "values", (v,)) for v in state]
        spread = max(float(np.max(np.abs(c.numpy() - each[0].numpy())))
                     for each in copies for c in each)
        return [v.numpy() for v in variables], optimizer.original_state()[0], \\
            float(optimizer.loss_scale.numpy()), spread

    one = run(tf.distribute.get_strategy())
    two = run(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    print(one[1], two[1], one[2], two[2], float(np.max(np.abs(one[0][-1] - 1.0))),
          max(float(np.max(np.abs(a - b))) for a, b in zip(one[0], two[0])), two[3])
""")


def test_mirrored_sparse_unused_and_loss_scaled_step_equals_one_device():
    """IndexedSlices gradients, a variable without a gradient, dynamic loss scaling: under
    MirroredStrategy the same updates as on one device, on each device's copy; the unused
    variable stays put."""
    result = subprocess.run([sys.executable, "-c", SPARSE_MIRRORED], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    steps_one, steps_two, scale_one, scale_two, unused_moved, diff, spread = \
        result.stdout.split()[-7:]
    assert steps_one == steps_two == "4" and scale_one == scale_two
    assert float(unused_moved) == 0.0 and float(diff) < 1e-6, result.stdout
    assert float(spread) == 0.0, f"the devices' copies differ by {spread}"


def test_building_inside_a_strategy_at_the_first_update_is_refused():
    variable = keras.Variable(np.ones(2, np.float32))
    optimizer = optimization.AdamWeightDecay(1e-3)
    optimizer.set_original_names({"x/kernel": variable})
    with tf.distribute.MirroredStrategy([tf.config.list_logical_devices("CPU")[0].name]).scope():
        with pytest.raises(ValueError, match="build\\(\\) the optimizer inside the strategy"):
            optimizer.apply([tf.ones(2)], [variable])
