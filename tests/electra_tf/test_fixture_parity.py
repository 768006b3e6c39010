"""Our converted models reproduce every output the ORIGINAL code recorded (original-tiny)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.models.encoder import INPUT_NAMES
from tests.conftest import FIXTURES
from tests.electra_tf import numpy_reference as ref
from tests.electra_tf.encoder_internals import encoder_internals

TINY = FIXTURES / "original-tiny"
ATOL = dict(atol=1e-5, rtol=1e-5)  # the tolerance the fixtures were made for


@pytest.fixture(scope="module")
def inputs():
    return dict(np.load(TINY / "inputs.npz"))


@pytest.fixture(scope="module")
def direct():
    return dict(np.load(TINY / "outputs_direct.npz"))


@pytest.fixture(scope="module")
def features(inputs):
    return {k: inputs[k] for k in INPUT_NAMES}


def _encoder_outputs(encoder, features):
    internals = encoder_internals(encoder)(features)
    outputs = encoder(features)
    ids = tf.constant(features["input_ids"])
    return {
        "token_embeddings": encoder.embeddings.word_embeddings(ids),
        "embeddings_layernorm_output": encoder.embeddings(ids, features["segment_ids"]),
        "embedding_output": outputs["embedding_output"],
        "all_layer_outputs": np.stack(internals["all_layer_outputs"]),
        "attention_probs": np.stack(internals["attention_probs"]),
        "sequence_output": outputs["sequence_output"],
        "pooled_output": outputs["pooled_output"],
    }


@pytest.mark.parametrize("prefix", ["disc", "gen"])
def test_encoder_outputs_match_original(tiny_loaded, features, direct, prefix):
    encoder = tiny_loaded.encoder if prefix == "disc" else tiny_loaded.generator.encoder
    ours = _encoder_outputs(encoder, features)
    for key, value in ours.items():
        expected = direct[f"{prefix}.{key}"]
        tol = dict(atol=1e-6, rtol=0) if key == "attention_probs" else ATOL
        np.testing.assert_allclose(np.asarray(value), expected, **tol, err_msg=key)


def test_generator_head_matches_original(tiny_loaded, inputs, features, direct):
    gen = tiny_loaded.generator
    positions = inputs["masked_lm_positions"]
    seq = gen(features)["sequence_output"]
    gathered = np.take_along_axis(np.asarray(seq), positions[..., None], axis=1)
    np.testing.assert_allclose(gathered, direct["gen.mlm_gathered_reprs"], **ATOL)
    # The head on gathered positions only (the pretraining path) ...
    logits = np.asarray(gen.head(seq, mask_positions=positions))
    np.testing.assert_allclose(logits, direct["gen.mlm_logits"], **ATOL)
    # ... equals the model's every-position logits gathered afterwards.
    all_logits = np.asarray(gen(features)["logits"])
    np.testing.assert_allclose(
        np.take_along_axis(all_logits, positions[..., None], axis=1), logits, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(-1), direct["gen.mlm_preds"])
    # get_softmax_output: per-slot NLL, weighted mean with the 1e-6 denominator.
    log_probs = tf.nn.log_softmax(logits).numpy()
    nll = -np.take_along_axis(log_probs, inputs["masked_lm_ids"][..., None], -1)[..., 0]
    np.testing.assert_allclose(nll, direct["gen.mlm_per_example_loss"], **ATOL)
    weights = inputs["masked_lm_weights"]
    loss = (weights * nll).sum() / (weights.sum() + 1e-6)
    np.testing.assert_allclose(loss, direct["gen.mlm_loss"], **ATOL)


def test_discriminator_head_matches_original(tiny_loaded, features, direct):
    logits = np.asarray(tiny_loaded.discriminator(features)["logits"])
    np.testing.assert_allclose(logits, direct["disc.logits"], **ATOL)
    np.testing.assert_allclose(tf.sigmoid(logits), direct["disc.probs"], atol=1e-6)
    preds = np.round((np.sign(logits) + 1) / 2).astype(np.int32)
    np.testing.assert_array_equal(preds, direct["disc.preds"])
    mask = features["input_mask"].astype(np.float32)
    losses = tf.nn.sigmoid_cross_entropy_with_logits(np.zeros_like(logits), logits).numpy()
    np.testing.assert_allclose((losses * mask).sum(-1) / (mask.sum(-1) + 1e-6),
                               direct["disc.per_example_loss_all_labels_0"], **ATOL)
    np.testing.assert_allclose((losses * mask).sum() / (mask.sum() + 1e-6),
                               direct["disc.loss_all_labels_0"], **ATOL)


def test_numpy_reference_matches_original(tiny_prefix, features, direct):
    """The reference used for the other configurations is itself right."""
    w = checkpoints.read_checkpoint(tiny_prefix)
    w = {k: v.astype(np.float64) for k, v in w.items() if v.dtype == np.float32}
    disc, probs = ref.bert(w, "electra", features, num_heads=4)
    np.testing.assert_allclose(disc, direct["disc.sequence_output"], atol=1e-5)
    np.testing.assert_allclose(np.stack(probs), direct["disc.attention_probs"], atol=1e-6)
    np.testing.assert_allclose(ref.disc_logits(w, disc), direct["disc.logits"], atol=1e-5)
    gen, _ = ref.bert(w, "generator", features, num_heads=1)
    np.testing.assert_allclose(gen, direct["gen.sequence_output"], atol=1e-5)


def test_variable_names_and_shapes_match_original(tiny_loaded):
    recorded = json.loads((TINY / "checkpoint_variables.json").read_text())["variables"]
    expected = {v["name"]: tuple(v["shape"]) for v in recorded
                if not v["name"].endswith(("/adam_m", "/adam_v")) and v["name"] != "global_step"}
    mapping = checkpoints.variable_map(tiny_loaded.models)
    assert {n: m.original_shape for n, m in mapping.items()} == expected
    assert len(mapping) == 80


def test_finetuned_checkpoint_loads_encoder(tmp_path):
    """A fine-tuned original checkpoint: `electra/*` loads, `task_specific/*` is listed."""
    mnli = FIXTURES / "original-tiny-mnli"
    hparams = json.loads((mnli / "config.json").read_text())["finetuning_config_kwargs"]
    from electra_tf.config import PretrainingConfig
    config = PretrainingConfig("mnli", str(tmp_path), embedding_size=hparams["embedding_size"],
                               vocab_size=hparams["vocab_size"],
                               model_hparam_overrides=hparams["model_hparam_overrides"])
    loaded = checkpoints.load_original(str(mnli / "ckpt" / "model.ckpt"), config)
    assert loaded.generator is None and loaded.discriminator is None
    assert loaded.ignored and all(n.startswith("task_specific/mnli/") for n in loaded.ignored)
    inputs = dict(np.load(mnli / "inputs.npz"))
    expected = dict(np.load(mnli / "outputs_eval.npz"))
    out = loaded.encoder({k: inputs[k] for k in INPUT_NAMES})
    np.testing.assert_allclose(out["sequence_output"], expected["electra.sequence_output"],
                               **ATOL)
    np.testing.assert_allclose(out["pooled_output"], expected["electra.pooled_output"], **ATOL)
