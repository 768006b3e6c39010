"""Pretraining hyperparameters: defaults, assembly order, model sizing, presets."""

import dataclasses
import json

import pytest

from electra_tf import config as config_lib
from electra_tf.config import BertConfig, PretrainingConfig
from electra_tf.hparams import parse_hparams
from tests.conftest import REPO

# The original's fields and defaults (paths aside).
SPEC_DEFAULTS = {
    "debug": False, "do_train": True, "do_eval": False, "electra_objective": True,
    "electric_objective": False, "gen_weight": 1.0, "disc_weight": 50.0, "mask_prob": 0.15,
    "learning_rate": 5e-4, "lr_decay_power": 1.0, "weight_decay_rate": 0.01,
    "num_warmup_steps": 10000, "iterations_per_loop": 200, "save_checkpoints_steps": 1000,
    "num_train_steps": 1000000, "num_eval_steps": 100, "keep_checkpoint_max": 5,
    "model_size": "small", "model_hparam_overrides": {}, "embedding_size": 128,
    "vocab_size": 30522, "do_lower_case": True, "uniform_generator": False,
    "two_tower_generator": False, "untied_generator_embeddings": False,
    "untied_generator": True, "generator_layers": 1.0, "generator_hidden_size": 0.25,
    "disallow_correct": False, "temperature": 1.0, "max_seq_length": 128,
    "train_batch_size": 128, "eval_batch_size": 128, "use_tpu": False, "num_tpu_cores": 1,
    "tpu_job_name": None, "tpu_name": None, "tpu_zone": None, "gcp_project": None,
    "max_predictions_per_seq": 19,
}


def test_every_original_default():
    config = PretrainingConfig("m", "/data")
    for name, value in SPEC_DEFAULTS.items():
        assert getattr(config, name) == value, name
    assert config.pretrain_tfrecords == "/data/pretrain_tfrecords/pretrain_data.tfrecord*"
    assert config.vocab_file == "/data/vocab.txt"
    assert config.model_dir == "/data/models/m"
    assert config.results_txt == "/data/models/m/results/unsup_results.txt"
    assert config.results_json == "/data/models/m/results/unsup_results.json"


@pytest.mark.parametrize("kwargs,n", [({}, 19), ({"max_seq_length": 512}, 79),
                                      ({"max_seq_length": 512, "mask_prob": 0.25}, 130)])
def test_max_predictions_per_seq(kwargs, n):
    assert PretrainingConfig("m", "d", **kwargs).max_predictions_per_seq == n


def test_unknown_and_derived_hparams_are_errors():
    with pytest.raises(ValueError, match="Unknown hparam: no_such_thing"):
        PretrainingConfig("m", "d", no_such_thing=1)
    with pytest.raises(ValueError, match="Unknown hparam: max_predictions_per_seq"):
        PretrainingConfig("m", "d", max_predictions_per_seq=5)
    with pytest.raises(ValueError, match="embedding_size is a top-level hparam"):
        PretrainingConfig("m", "d", model_hparam_overrides={"embedding_size": 64})
    with pytest.raises(ValueError, match=r"key: hiden_size \(did you mean hidden_size\?\)$"):
        PretrainingConfig("m", "d", model_hparam_overrides={"hiden_size": 64})
    with pytest.raises(ValueError, match="model_size"):
        PretrainingConfig("m", "d", model_size="huge")


def test_assembly_order():
    debug = PretrainingConfig("m", "d", debug=True)
    assert (debug.train_batch_size, debug.num_train_steps, debug.eval_batch_size,
            debug.iterations_per_loop, debug.num_eval_steps) == (8, 20, 4, 1, 2)
    # Passed values beat the debug and size defaults.
    explicit = PretrainingConfig("m", "d", debug=True, train_batch_size=3, embedding_size=64)
    assert explicit.train_batch_size == 3 and explicit.embedding_size == 64
    assert PretrainingConfig("m", "d", model_size="base").embedding_size is None
    assert PretrainingConfig("m", "d", electric_objective=True).two_tower_generator
    # Paths come from the constructor arguments; model_dir alone can be overridden.
    moved = PretrainingConfig("m", "d", model_dir="/elsewhere")
    assert moved.model_dir == "/elsewhere" and moved.results_txt.startswith("d/models/m/")


@pytest.mark.parametrize("size,hidden,layers,heads,inter,emb", [
    ("small", 256, 12, 4, 1024, 128), ("base", 768, 12, 12, 3072, 768),
    ("large", 1024, 24, 16, 4096, 1024)])
def test_model_sizes(size, hidden, layers, heads, inter, emb):
    config = PretrainingConfig("m", "d", model_size=size)
    bert = config_lib.get_bert_config(config)
    assert (bert.hidden_size, bert.num_hidden_layers, bert.num_attention_heads,
            bert.intermediate_size) == (hidden, layers, heads, inter)
    assert config_lib.embedding_size(config, bert) == emb
    assert (bert.max_position_embeddings, bert.type_vocab_size, bert.hidden_act,
            bert.hidden_dropout_prob, bert.initializer_range) == (512, 2, "gelu", 0.1, 0.02)


def test_overrides_rederive_heads_and_ffn_but_explicit_values_win():
    bert = config_lib.get_bert_config(PretrainingConfig(
        "m", "d", model_hparam_overrides={"hidden_size": 512}))
    assert (bert.num_attention_heads, bert.intermediate_size) == (8, 2048)
    bert = config_lib.get_bert_config(PretrainingConfig(
        "m", "d", model_hparam_overrides={"hidden_size": 512, "num_attention_heads": 2}))
    assert (bert.num_attention_heads, bert.intermediate_size) == (2, 2048)


@pytest.mark.parametrize("size,fraction,expected", [
    ("small", 0.25, (64, 1, 256, 12)), ("small", 1.0, (256, 4, 1024, 12)),
    ("base", 0.25, (192, 3, 768, 12)), ("base", 0.33333, (256, 4, 1024, 12)),
    ("large", 0.25, (256, 4, 1024, 24))])
def test_generator_sizing(size, fraction, expected):
    config = PretrainingConfig("m", "d", model_size=size, generator_hidden_size=fraction)
    gen = config_lib.get_generator_config(config, config_lib.get_bert_config(config))
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size,
            gen.num_hidden_layers) == expected


def test_generator_ignores_head_and_ffn_overrides():
    config = PretrainingConfig("m", "d", model_hparam_overrides={
        "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 256},
        generator_hidden_size=0.5)
    gen = config_lib.get_generator_config(config, config_lib.get_bert_config(config))
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size) == (32, 1, 128)


def test_debug_model():
    config = PretrainingConfig("m", "d", debug=True)
    bert = config_lib.get_bert_config(config)
    assert (bert.num_hidden_layers, bert.hidden_size, bert.intermediate_size,
            bert.num_attention_heads) == (3, 144, 576, 4)
    gen = config_lib.get_generator_config(config, bert)
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size,
            gen.num_hidden_layers) == (36, 1, 144, 3)
    assert config.embedding_size == 128


def test_bert_config_defaults_and_unknown_keys():
    bert = BertConfig(vocab_size=10)
    assert dataclasses.asdict(bert) == {
        "vocab_size": 10, "hidden_size": 768, "num_hidden_layers": 12,
        "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512, "type_vocab_size": 2, "initializer_range": 0.02}
    with pytest.raises(ValueError, match="Unknown BertConfig field: embedding_size"):
        BertConfig.from_dict({"vocab_size": 10, "embedding_size": 4})


def test_save_load_round_trip(tmp_path):
    config = PretrainingConfig("m", "/data", debug=True, generator_hidden_size=0.5)
    config.save(str(tmp_path / "config.json"))
    again = PretrainingConfig.load(str(tmp_path / "config.json"))
    assert again.to_dict() == config.to_dict()
    (tmp_path / "other.json").write_text(json.dumps({"debug": True}))
    with pytest.raises(ValueError, match="not an electra_tf config file"):
        PretrainingConfig.load(str(tmp_path / "other.json"))


@pytest.mark.parametrize("preset,checks", [
    ("small", {"embedding_size": 128, "generator_hidden_size": 0.25, "max_seq_length": 128}),
    ("small_plus_plus", {"generator_hidden_size": 1.0, "num_train_steps": 4000000}),
    ("base", {"max_seq_length": 512, "learning_rate": 2e-4, "train_batch_size": 256,
              "embedding_size": 768, "generator_hidden_size": 0.33333,
              "num_train_steps": 766000}),
    ("large", {"max_seq_length": 512, "mask_prob": 0.25, "train_batch_size": 2048,
               "embedding_size": 1024, "max_predictions_per_seq": 130}),
    ("debug", {"train_batch_size": 8, "num_train_steps": 20}),
])
def test_presets(preset, checks):
    hparams = parse_hparams(str(REPO / "configs" / f"{preset}.json"))
    config = PretrainingConfig("m", "d", **hparams)
    for name, value in checks.items():
        assert getattr(config, name) == value, name
