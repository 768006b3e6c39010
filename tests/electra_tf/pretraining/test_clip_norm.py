"""The global-norm clip over several pretraining steps, against the original's own run.

`tests/fixtures/clip-norm/reference.json` holds the norms and losses the ORIGINAL code (off
TPU: word embeddings looked up with `tf.gather`) computed over five steps from the
`original-tiny` checkpoint with untied generator embeddings, dropout off and the fixture's
fixed masking and samples (`make_reference.py` beside it regenerates it). Only the
discriminator's word-embedding table is looked up alone there, so its gradient is the one
`IndexedSlices` whose rows enter the norm per lookup.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints, optimization
from electra_tf.config import PretrainingConfig
from electra_tf.models import build_models
from electra_tf.models.encoder import INPUT_NAMES
from electra_tf.pretraining import helpers
from electra_tf.pretraining import trainer as training
from electra_tf.pretraining.objective import Objective
from electra_tf.training import step as step_lib
from tests.conftest import FIXTURES
from tests.electra_tf.optimization.test_clip_norm import original_global_norms
from tests.electra_tf.pretraining.test_objective import fixed_masking
from tests.electra_tf.pretraining.test_trainer import data_dir  # noqa: F401 (a fixture)

REFERENCE = json.loads((FIXTURES / "clip-norm" / "reference.json").read_text())
TINY = FIXTURES / "original-tiny"


def untied_start(clip_norm_of_sparse_gradients=None):
    """Our models and optimizer at the reference's starting point: the fixture checkpoint,
    with the untied generator's embedding block (and its slots) copied from the shared one."""
    config = PretrainingConfig("tiny", "/nonexistent", **REFERENCE["hparams"],
                               clip_norm_of_sparse_gradients=clip_norm_of_sparse_gradients)
    reader = tf.train.load_checkpoint(str(TINY / "ckpt" / "model.ckpt"))
    stored = reader.get_variable_to_shape_map()

    def value(name):
        source = name if name in stored else name.replace("generator/embeddings/",
                                                          "electra/embeddings/")
        return reader.get_tensor(source)

    models = build_models(config)
    names = checkpoints.variable_map(models)
    assert "generator/embeddings/word_embeddings" in names
    for name, m in names.items():
        m.variable.assign(value(name).reshape(m.variable.shape))
    optimizer = optimization.pretraining_optimizer(config, names)
    optimizer.load_original_state(
        {n: {s: value(f"{n}/{s}") for s in ("adam_m", "adam_v")} for n in names},
        REFERENCE["start_global_step"])
    return config, models, names, optimizer


def train(clip_norm_of_sparse_gradients=None, steps=len(REFERENCE["steps"])):
    """[{total_loss, mlm_loss, global_norm}] of each step: the losses of its forward pass
    and the norm the optimizer clipped with."""
    config, models, names, optimizer = untied_start(clip_norm_of_sparse_gradients)
    inputs = dict(np.load(TINY / "inputs.npz"))
    features = {k: inputs[k] for k in INPUT_NAMES}
    masked = fixed_masking(inputs)
    objective = Objective(config, models)
    variables = [m.variable for m in names.values()]
    seeds = helpers.example_seeds(1, 0, 4)

    @tf.function
    def train_step():
        def loss_fn():
            out = objective(features, seeds, training=True, masked=masked,
                            sample=lambda *_: tf.constant(inputs["sampled_tokids"]))
            return out["total_loss"], (out["total_loss"], out["mlm"]["loss"])

        return step_lib.train_step(loss_fn, optimizer, variables)

    seen = []
    for _ in range(steps):
        total, mlm = train_step()
        seen.append({"total_loss": float(total), "mlm_loss": float(mlm),
                     "global_norm": float(optimizer.global_norm.numpy())})
    assert int(optimizer.iterations.numpy()) == REFERENCE["start_global_step"] + steps
    return seen


@pytest.fixture(scope="module")
def per_lookup():
    return train()  # the default off TPU


def test_the_norms_each_step_are_the_originals(per_lookup):
    expected = REFERENCE["steps"]
    assert REFERENCE["sparse_gradients"] == ["electra/embeddings/word_embeddings"]
    assert REFERENCE["final_global_step"] == REFERENCE["start_global_step"] + len(expected)
    for t, (ours, theirs) in enumerate(zip(per_lookup, expected), start=1):
        for key in ("global_norm", "total_loss", "mlm_loss"):
            assert ours[key] == pytest.approx(theirs[key], rel=3e-6), (t, key, ours, theirs)
    # Clipping acts on every step (norms ≫ 1), and the per-lookup norm is not the dense one
    # by far more than the tolerance: a dense clip could not pass the comparison above.
    assert all(s["global_norm"] > 10 for s in expected)
    assert all(abs(s["global_norm"] / s["dense_global_norm"] - 1) > 5e-4 for s in expected)


def test_the_tpu_setting_clips_with_the_dense_norm(per_lookup):
    dense = train("dense", steps=2)
    first = REFERENCE["steps"][0]
    # Same forward pass, the norm of the summed gradient ...
    assert dense[0]["total_loss"] == pytest.approx(first["total_loss"], rel=3e-6)
    assert dense[0]["global_norm"] == pytest.approx(first["dense_global_norm"], rel=3e-6)
    assert dense[0]["global_norm"] != pytest.approx(per_lookup[0]["global_norm"], rel=1e-4)
    # ... so another update, and another trajectory.
    assert dense[1]["total_loss"] != pytest.approx(per_lookup[1]["total_loss"], rel=1e-5)


def test_the_default_follows_use_tpu():
    hparams = REFERENCE["hparams"]
    assert PretrainingConfig("t", "/d", **hparams).clip_norm_of_sparse_gradients == "per_lookup"
    assert PretrainingConfig("t", "/d", use_tpu=True,
                             **hparams).clip_norm_of_sparse_gradients == "dense"
    assert PretrainingConfig("t", "/d", use_tpu=True, clip_norm_of_sparse_gradients="per_lookup",
                             **hparams).clip_norm_of_sparse_gradients == "per_lookup"
    with pytest.raises(ValueError, match="clip_norm_of_sparse_gradients must be one of "
                                         "per_lookup, dense"):
        PretrainingConfig("t", "/d", clip_norm_of_sparse_gradients="sparse", **hparams)


def pretrainer_step(data_dir, name, **hparams):
    """One step of the `Pretrainer`'s own training loop with untied generator embeddings and
    dropout off: (the norm its optimizer clipped with, the original's norms by hand)."""
    config = PretrainingConfig(name, str(data_dir), **dict(
        REFERENCE["hparams"], train_batch_size=8, seed=5, **hparams))
    trainer = training.Pretrainer(config, log=lambda line: None)
    batch = next(trainer.input_iterator(config.train_batch_size, trainer.run_seed))
    seeds = batch.pop("seeds")
    with tf.GradientTape() as tape:
        loss = trainer.objective(batch, seeds, training=True)["total_loss"]
    grads = tape.gradient(loss, trainer.variables)
    hand = original_global_norms(zip(trainer.names, grads))
    trainer.make_train_loop()(trainer.input_iterator(config.train_batch_size, trainer.run_seed),
                              tf.constant(1))
    assert trainer.step == 1
    return float(trainer.optimizer.global_norm.numpy()), hand


@pytest.mark.parametrize("hparams", [{}, {"jit_compile": True}], ids=["eager", "xla"])
def test_the_pretrainer_passes_the_lookups_to_the_clip(data_dir, hparams):
    """The trainer's loop keeps the `IndexedSlices` alive up to the optimizer: it clips with
    the per-lookup norm, which the dense one would miss by far more than the tolerance."""
    seen, (per_lookup, dense) = pretrainer_step(data_dir, "per-lookup", **hparams)
    assert abs(per_lookup / dense - 1) > 1e-4
    assert seen == pytest.approx(per_lookup, rel=3e-6)
