"""Conversion to and from the original checkpoint layout: names, shapes, round trips, errors."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints, models as modeling
from electra_tf.config import PretrainingConfig
from tests.conftest import FIXTURES, REPO
from tests.electra_tf import numpy_reference as ref

SMALL = {"vocab_size": 97, "max_seq_length": 16,
         "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 2, "intermediate_size": 96}}


def spec_names(config):
    """Original variable names and shapes, written out independently of the name table."""
    V, o = config.vocab_size, config.model_hparam_overrides
    H, L, I = o["hidden_size"], o["num_hidden_layers"], o["intermediate_size"]
    E = config.embedding_size or H
    names = {}

    def embeddings(scope, width):
        names.update({f"{scope}/embeddings/word_embeddings": (V, width),
                      f"{scope}/embeddings/token_type_embeddings": (2, width),
                      f"{scope}/embeddings/position_embeddings": (512, width),
                      f"{scope}/embeddings/LayerNorm/beta": (width,),
                      f"{scope}/embeddings/LayerNorm/gamma": (width,)})

    def encoder(scope, h, layers, inter, width):
        if width != h:
            names.update({f"{scope}/embeddings_project/kernel": (width, h),
                          f"{scope}/embeddings_project/bias": (h,)})
        for i in range(layers):
            p = f"{scope}/encoder/layer_{i}/"
            for n in ("query", "key", "value"):
                names.update({p + f"attention/self/{n}/kernel": (h, h),
                              p + f"attention/self/{n}/bias": (h,)})
            names.update({p + "attention/output/dense/kernel": (h, h),
                          p + "attention/output/dense/bias": (h,),
                          p + "attention/output/LayerNorm/beta": (h,),
                          p + "attention/output/LayerNorm/gamma": (h,),
                          p + "intermediate/dense/kernel": (h, inter),
                          p + "intermediate/dense/bias": (inter,),
                          p + "output/dense/kernel": (inter, h), p + "output/dense/bias": (h,),
                          p + "output/LayerNorm/beta": (h,), p + "output/LayerNorm/gamma": (h,)})

    def mlm(scope, h, width):
        names.update({f"{scope}/dense/kernel": (h, width), f"{scope}/dense/bias": (width,),
                      f"{scope}/LayerNorm/beta": (width,), f"{scope}/LayerNorm/gamma": (width,),
                      f"{scope}/output_bias": (V,)})

    embeddings("electra", E)
    encoder("electra", H, L, I, E)
    hg = int(round(H * config.generator_hidden_size))
    lg = int(round(L * config.generator_layers))
    if config.two_tower_generator:
        for tower in ("generator_ltr", "generator_rtl"):
            encoder(tower, hg, lg, 4 * hg, E)
        mlm("cloze_predictions", 2 * hg, E)
    elif config.untied_generator and config.electra_objective:
        if config.untied_generator_embeddings:
            embeddings("generator", hg)
        encoder("generator", hg, lg, 4 * hg, hg if config.untied_generator_embeddings else E)
        mlm("generator_predictions", hg, hg if config.untied_generator_embeddings else E)
    else:
        mlm("generator_predictions", H, E)
    if config.electra_objective or config.electric_objective:
        names.update({"discriminator_predictions/dense/kernel": (H, H),
                      "discriminator_predictions/dense/bias": (H,),
                      "discriminator_predictions/dense_1/kernel": (H, 1),
                      "discriminator_predictions/dense_1/bias": (1,)})
    return names


VARIANTS = {
    # A generator with its own projection: E=32 != h_g=16.
    "generator_projection": dict(embedding_size=32, generator_hidden_size=0.25),
    "untied_embeddings": dict(embedding_size=32, generator_hidden_size=0.5,
                              untied_generator_embeddings=True),
    "one_network": dict(embedding_size=32, untied_generator=False),
    "bert_objective": dict(embedding_size=64, electra_objective=False),
    "electric": dict(embedding_size=32, generator_hidden_size=0.5, electric_objective=True,
                     electra_objective=False),
    "shallow_generator": dict(embedding_size=64, generator_hidden_size=0.5,
                              generator_layers=0.5),
}


def _randomize(models, seed):
    """Every variable gets distinct random values, so a swapped mapping cannot pass."""
    rng = np.random.default_rng(seed)
    for m in checkpoints.variable_map(models).values():
        m.variable.assign(rng.normal(0.0, 0.3, m.variable.shape).astype(np.float32))


def _features(batch=3, seq=12, vocab=97, seed=0):
    rng = np.random.default_rng(seed)
    lengths = [seq, seq - 4, 5][:batch]
    mask = np.array([[1] * n + [0] * (seq - n) for n in lengths], np.int32)
    ids = rng.integers(1, vocab, (batch, seq)).astype(np.int32) * mask
    segments = (np.arange(seq)[None] >= np.array(lengths)[:, None] // 2).astype(np.int32) * mask
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_layout_and_numerics_from_spec(variant, tmp_path):
    config = PretrainingConfig("v", str(tmp_path), **SMALL, **VARIANTS[variant])
    models = modeling.build_models(config)
    _randomize(models, seed=len(variant))
    prefix = checkpoints.save_original(models, str(tmp_path / "ckpt" / "model.ckpt"))
    listed = dict(tf.train.list_variables(prefix))
    assert {n: tuple(s) for n, s in listed.items()} == spec_names(config)

    # The layout alone determines the architecture (heads follow the H//64 rule, so pass
    # the config here for the 2-head overrides) and the values come back bit-identically.
    loaded = checkpoints.load_original(prefix, config)
    for name, m in checkpoints.variable_map(loaded.models).items():
        np.testing.assert_array_equal(m.variable.numpy().reshape(m.original_shape),
                                      tf.train.load_variable(prefix, name), err_msg=name)

    # Forward pass against the NumPy transcription of the spec, by original names.
    w = {k: v.astype(np.float64) for k, v in checkpoints.read_checkpoint(prefix).items()}
    features = _features()
    table = "electra/embeddings/word_embeddings"
    gen = loaded.generator
    if config.two_tower_generator:
        hg = int(round(64 * config.generator_hidden_size))
        ltr, _ = ref.bert(w, "generator_ltr", features, max(1, hg // 64), direction="ltr")
        rtl, _ = ref.bert(w, "generator_rtl", features, max(1, hg // 64), direction="rtl")
        hidden = np.concatenate([np.roll(ltr, 1, 1), np.roll(rtl, -1, 1)], -1)
        expected = ref.mlm_logits(w, "cloze_predictions", hidden, table)
    elif "generator/encoder/layer_0/attention/self/query/kernel" in w:
        hg = int(round(64 * config.generator_hidden_size))
        emb_scope = "generator" if config.untied_generator_embeddings else "electra"
        hidden, _ = ref.bert(w, "generator", features, max(1, hg // 64), emb_scope)
        expected = ref.mlm_logits(w, "generator_predictions", hidden,
                                  f"{emb_scope}/embeddings/word_embeddings")
    else:
        hidden, _ = ref.bert(w, "electra", features, 2)
        expected = ref.mlm_logits(w, "generator_predictions", hidden, table)
    np.testing.assert_allclose(gen(features)["logits"], expected, atol=1e-4, rtol=1e-4)
    if loaded.discriminator is not None:
        disc, _ = ref.bert(w, "electra", features, 2)
        np.testing.assert_allclose(loaded.discriminator(features)["logits"],
                                   ref.disc_logits(w, disc), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("variant", ["generator_projection", "untied_embeddings", "electric",
                                     "one_network", "bert_objective"])
def test_config_inferred_from_shapes(variant, tmp_path):
    hparams = dict(SMALL, **VARIANTS[variant])
    hparams["model_hparam_overrides"] = dict(hparams["model_hparam_overrides"],
                                             num_attention_heads=1)  # = H // 64
    config = PretrainingConfig("v", str(tmp_path), **hparams)
    prefix = checkpoints.save_original(modeling.build_models(config),
                                       str(tmp_path / "model.ckpt"))
    loaded = checkpoints.load_original(prefix)
    assert spec_names(loaded.config) == spec_names(config)
    for name, m in checkpoints.variable_map(loaded.models).items():
        np.testing.assert_array_equal(m.variable.numpy().reshape(m.original_shape),
                                      tf.train.load_variable(prefix, name))


def test_full_round_trip_is_bit_identical(tiny_config, tiny_prefix, tmp_path):
    """original → our model dir → original: the same names, dtypes and bytes, slots too."""
    model_dir = tmp_path / "models" / "tiny"
    checkpoints.convert_from_original(tiny_prefix, str(model_dir), tiny_config)
    back = checkpoints.convert_to_original(str(model_dir), str(tmp_path / "back" / "model.ckpt"))
    original = checkpoints.read_checkpoint(tiny_prefix)
    written = checkpoints.read_checkpoint(back)
    assert sorted(original) == sorted(written) and len(written) == 241
    for name, value in original.items():
        assert written[name].dtype == value.dtype, name
        np.testing.assert_array_equal(written[name], value, err_msg=name)
    recorded = json.loads((FIXTURES / "original-tiny" / "checkpoint_variables.json")
                          .read_text())["variables"]
    assert sorted((n, list(s)) for n, s in tf.train.list_variables(back)) == sorted(
        (v["name"], v["shape"]) for v in recorded)
    assert tf.train.latest_checkpoint(str(tmp_path / "back")) == back


def test_ours_to_original_to_ours_is_bit_identical(tiny_config, tmp_path):
    models = modeling.build_models(tiny_config)
    _randomize(models, seed=7)
    checkpoints.save_model_dir(models, str(tmp_path / "ours"))
    prefix = checkpoints.convert_to_original(str(tmp_path / "ours"), str(tmp_path / "o/m.ckpt"))
    again = checkpoints.load_original(prefix, tiny_config)
    first = checkpoints.variable_map(models)
    for name, m in checkpoints.variable_map(again.models).items():
        np.testing.assert_array_equal(m.variable.numpy(), first[name].variable.numpy())


def test_discriminator_only_checkpoint(tiny_config, tiny_loaded, tmp_path):
    values = checkpoints.read_checkpoint(
        str(FIXTURES / "original-tiny" / "ckpt" / "model.ckpt"))
    keep = {n: v for n, v in values.items() if n.startswith(("electra/", "discriminator_pred"))
            and "/adam_" not in n}
    checkpoints.write_tensors(str(tmp_path / "disc.ckpt"), keep)
    loaded = checkpoints.load_original(str(tmp_path / "disc.ckpt"), tiny_config)
    assert loaded.generator is None and loaded.global_step is None
    features = _features(vocab=1024)
    np.testing.assert_array_equal(loaded.discriminator(features)["logits"],
                                  tiny_loaded.discriminator(features)["logits"])


def test_config_that_disagrees_names_variables_and_writes_nothing(tiny_prefix, tiny_hparams,
                                                                  tmp_path):
    wrong = PretrainingConfig("tiny", str(tmp_path), **dict(tiny_hparams, embedding_size=64))
    with pytest.raises(ValueError) as error:
        checkpoints.convert_from_original(tiny_prefix, str(tmp_path / "out"), wrong)
    message = str(error.value)
    assert "electra/embeddings/word_embeddings [1024, 32] vs [1024, 64]" in message
    assert "electra/embeddings_project/kernel" in message  # absent when E = H
    assert not (tmp_path / "out").exists()


def test_missing_and_truncated_checkpoints(tiny_prefix, tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/model.ckpt.index"):
        checkpoints.load_original(str(tmp_path / "nowhere" / "model.ckpt"))
    with pytest.raises(FileNotFoundError, match="no TF checkpoint"):
        checkpoints.load_original(str(tmp_path))
    broken = tmp_path / "broken"
    shutil.copytree(os.path.dirname(tiny_prefix), broken)
    data = broken / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(ValueError, match="cannot read variable"):
        checkpoints.load_original(str(broken / "model.ckpt"), tiny_config)


def test_not_an_electra_checkpoint(tmp_path):
    checkpoints.write_tensors(str(tmp_path / "x.ckpt"), {"bert/foo": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="no variable 'electra/embeddings/word_embeddings'"):
        checkpoints.load_original(str(tmp_path / "x.ckpt"))


def test_unmapped_variable_is_an_error(tiny_prefix, tiny_config, tmp_path):
    values = checkpoints.read_checkpoint(tiny_prefix)
    values["electra/encoder/layer_2/output/dense/bias"] = np.zeros(64, np.float32)
    checkpoints.write_tensors(str(tmp_path / "extra.ckpt"), values)
    with pytest.raises(ValueError, match="in the checkpoint but not in the model: "
                                         r"electra/encoder/layer_2/output/dense/bias \[64\]"):
        checkpoints.load_original(str(tmp_path / "extra.ckpt"), tiny_config)


def test_existing_outputs_are_never_overwritten(tiny_loaded, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        checkpoints.save_model_dir(tiny_loaded.models, str(tmp_path / "busy"))
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    prefix = checkpoints.save_original(tiny_loaded.models, str(tmp_path / "m.ckpt"))
    with pytest.raises(FileExistsError):
        checkpoints.save_original(tiny_loaded.models, prefix)


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "electra_tf.convert_checkpoint", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_cli_both_directions(tiny_prefix, tiny_hparams, tmp_path):
    out = tmp_path / "data" / "models" / "tiny"
    run = _cli("--from-original", tiny_prefix, "--config", json.dumps(tiny_hparams),
               "--output", str(out))
    assert run.returncode == 0, run.stderr
    assert "global_step=3" in run.stdout
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_name"] == "tiny" and saved["resolved"]["embedding_size"] == 32
    run = _cli("--to-original", str(out), "--output", str(tmp_path / "back" / "model.ckpt"))
    assert run.returncode == 0, run.stderr
    back = checkpoints.read_checkpoint(str(tmp_path / "back" / "model.ckpt"))
    for name, value in checkpoints.read_checkpoint(tiny_prefix).items():
        np.testing.assert_array_equal(back[name], value)
    run = _cli("--from-original", str(tmp_path / "missing.ckpt"), "--output", str(tmp_path / "x"))
    assert run.returncode != 0 and "missing.ckpt.index: no such file" in run.stderr
    assert not (tmp_path / "x").exists()
    run = _cli("--from-original", tiny_prefix, "--config", '{"no_such_hparam": 1}',
               "--output", str(tmp_path / "y"))
    assert run.returncode != 0 and "Unknown hparam: no_such_hparam" in run.stderr


def test_an_inferred_config_takes_its_paths_from_the_output_directory(tiny_prefix, tmp_path):
    out = tmp_path / "data" / "models" / "tiny"
    checkpoints.convert_from_original(tiny_prefix, str(out))
    saved = json.loads((out / "config.json").read_text())
    assert saved["model_name"] == "tiny" and saved["data_dir"] == str(tmp_path / "data")
    assert saved["resolved"]["vocab_file"] == str(tmp_path / "data" / "vocab.txt")


def suggested_config(text):
    """The JSON the head-count warning gives after --config."""
    match = re.search(r"--config '(\{.*\})'", text)
    assert match, text
    return json.loads(match.group(1))


def test_an_assumed_head_count_is_a_warning_with_the_config_that_overrides_it(
        tiny_prefix, tiny_loaded, tmp_path, caplog):
    # The tiny fixture has 4 heads at H=64, so the H // 64 rule gets it wrong.
    run = _cli("--from-original", tiny_prefix, "--output", str(tmp_path / "models" / "a"))
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "num_attention_heads" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        "num_attention_heads=1 assumed: a TF1 checkpoint does not store the head count")
    hparams = suggested_config(warnings[0])
    assert hparams["model_hparam_overrides"]["num_attention_heads"] == 1

    # The suggested --config, with the right count, gives the trained model and no warning.
    hparams["model_hparam_overrides"]["num_attention_heads"] = 4
    with caplog.at_level(logging.WARNING):
        config = checkpoints.config_for_dir(str(tmp_path / "models" / "b"), json.dumps(hparams))
        loaded = checkpoints.convert_from_original(tiny_prefix, config.model_dir, config)
    assert caplog.text == ""
    features = _features(vocab=1024)
    np.testing.assert_array_equal(loaded.discriminator(features)["logits"],
                                  tiny_loaded.discriminator(features)["logits"])
    with caplog.at_level(logging.WARNING):
        checkpoints.convert_from_original(tiny_prefix, str(tmp_path / "models" / "c"))
    assert len(caplog.records) == 1 and suggested_config(caplog.text) == dict(
        hparams, model_hparam_overrides=dict(hparams["model_hparam_overrides"],
                                             num_attention_heads=1))


def test_checkpoints_of_another_format_or_model_are_refused(tiny_loaded, tiny_hparams, tmp_path):
    directory = tmp_path / "m"
    checkpoints.save_model_dir(tiny_loaded.models, str(directory))
    latest = tf.train.latest_checkpoint(str(directory))
    # Weights are stored under their original names, not Keras' object graph.
    names = [name for name, _ in tf.train.list_variables(latest)]
    assert any("electra.Sembeddings.Sword_embeddings" in n for n in names)
    assert not any("_operations" in n for n in names)
    untied = modeling.build_models(PretrainingConfig(
        "m", "d", **dict(tiny_hparams, untied_generator_embeddings=True)))
    with pytest.raises(ValueError, match="does not hold this model's weights"):
        checkpoints.read_weights(untied, latest)
    components = json.loads((directory / "components.json").read_text())
    assert components.pop("checkpoint_format") == 2
    (directory / "components.json").write_text(json.dumps(components))  # as before version 2
    with pytest.raises(ValueError, match="checkpoint format 1, this electra-tf reads format 2"):
        checkpoints.load_model_dir(str(directory))


def test_data_files_left_without_their_index_are_replaced(tiny_loaded, tmp_path):
    """A writer killed between its renames leaves data without an index (never the
    reverse): writing the checkpoint again replaces that data instead of refusing."""
    prefix = str(tmp_path / "original" / "model.ckpt-3")
    os.makedirs(tmp_path / "original")
    (tmp_path / "original" / "model.ckpt-3.data-00000-of-00001").write_bytes(b"partial")
    checkpoints.save_original(tiny_loaded.models, prefix, 3)
    again = checkpoints.load_original(prefix, tiny_loaded.config)
    assert again.global_step == 3
    with pytest.raises(FileExistsError, match="exists already"):
        checkpoints.save_original(tiny_loaded.models, prefix, 3)
