"""FinetuningConfig: every default, the original assembly order, derived paths."""

import os

import pytest

from finetune import config as config_lib
from finetune.config import FinetuningConfig


def test_defaults_and_paths():
    c = FinetuningConfig("m", "/d")
    assert (c.task_names, c.max_seq_length, c.num_train_epochs) == (["chunk"], 256, 3.0)
    assert (c.learning_rate, c.layerwise_lr_decay, c.embedding_size) == (1e-4, 0.8, 128)
    assert (c.train_batch_size, c.eval_batch_size, c.predict_batch_size) == (32, 32, 32)
    assert (c.qa_na_threshold, c.beam_size, c.n_writes_test) == (-2.75, 20, 5)
    assert c.init_checkpoint == "/d/models/m"
    assert c.vocab_file == "/d/vocab.txt"
    assert c.model_dir == "/d/models/m/finetuning_models/chunk_model"
    assert c.results_txt == "/d/models/m/results/chunk_results.txt"
    assert c.preprocessed_data_dir == "/d/models/m/finetuning_tfrecords/chunk_tfrecords"
    assert c.raw_data_dir("rte") == "/d/finetuning_data/rte"


def test_model_vocab_preferred(tmp_path):
    os.makedirs(tmp_path / "models" / "m")
    (tmp_path / "models" / "m" / "vocab.txt").write_text("[PAD]\n")
    assert FinetuningConfig("m", str(tmp_path)).vocab_file == str(
        tmp_path / "models" / "m" / "vocab.txt")


@pytest.mark.parametrize("task, epochs, seq", [
    ("rte", 10.0, 128), ("sts", 10.0, 128), ("squad", 2.0, 512), ("newsqa", 2.0, 512),
    ("triviaqa", 2.0, 512), ("naturalqs", 3.0, 128), ("chunk", 3.0, 256), ("mnli", 3.0, 128)])
def test_single_task_defaults(task, epochs, seq):
    c = FinetuningConfig("m", "/d", task_names=[task])
    assert (c.num_train_epochs, c.max_seq_length) == (epochs, seq)


def test_multi_task_and_explicit_values_win():
    c = FinetuningConfig("m", "/d", task_names=["rte", "sts"])
    assert (c.num_train_epochs, c.model_dir) == (3.0, "/d/models/m/finetuning_models/rte,sts_model")
    c = FinetuningConfig("m", "/d", task_names=["rte"], num_train_epochs=4.0,
                         model_size="large", learning_rate=1e-5)
    assert (c.num_train_epochs, c.learning_rate, c.layerwise_lr_decay) == (4.0, 1e-5, 0.9)
    assert c.embedding_size is None
    assert FinetuningConfig("m", "/d", model_size="base").learning_rate == 1e-4


def test_debug_behaves_as_documented():
    c = FinetuningConfig("m", "/d", task_names=["mnli"], debug=True, train_batch_size=4)
    assert c.init_checkpoint is None  # the original's quirk kept the pretrained checkpoint
    assert c.preprocessed_data_dir.endswith("mnli_tfrecords-debug")
    assert (c.train_batch_size, c.iterations_per_loop, c.log_examples) == (4, 1, True)
    assert not c.use_tfrecords_if_existing
    bert = c.bert_config()
    assert (bert.num_hidden_layers, bert.hidden_size, bert.num_attention_heads) == (3, 144, 4)


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="learning_rat"):
        FinetuningConfig("m", "/d", learning_rat=1.0)
    with pytest.raises(ValueError, match="hiden_size"):
        FinetuningConfig("m", "/d", model_hparam_overrides={"hiden_size": 8})


def pretrained_dir(data_dir, name="tiny", **hparams):
    """A pretraining model directory `<data_dir>/models/<name>` (config.json, random
    weights) with `hparams`."""
    from electra_tf import checkpoints
    from electra_tf.config import PretrainingConfig
    from electra_tf.models import build_models

    config = PretrainingConfig(name, str(data_dir), **hparams)
    return checkpoints.save_model_dir(build_models(config), config.model_dir)


TINY_ARCH = {"vocab_size": 1024, "embedding_size": 32,
             "model_hparam_overrides": {"hidden_size": 64, "intermediate_size": 256,
                                        "num_attention_heads": 4, "num_hidden_layers": 2}}


def test_the_architecture_comes_from_the_pretrained_config_json(tmp_path):
    from electra_tf import checkpoints
    from electra_tf.config import get_bert_config

    assert config_lib.PRETRAINED_CONFIG_FILE == checkpoints.CONFIG_FILE
    pretrained_dir(tmp_path, **TINY_ARCH, do_lower_case=False)
    c = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"])
    assert (c.vocab_size, c.embedding_size, c.model_hparam_overrides, c.do_lower_case) == (
        1024, 32, TINY_ARCH["model_hparam_overrides"], False)
    assert c.architecture_line().startswith(
        f"architecture: from {tmp_path}/models/tiny/config.json (the pretrained model): "
        "model_size 'small', vocab_size 1024, embedding_size 32")
    # Explicit values that agree are fine; dropout is not architecture; the casing given wins.
    c = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"], vocab_size=1024,
                         model_hparam_overrides={"hidden_size": 64,
                                                 "hidden_dropout_prob": 0.2},
                         do_lower_case=True)
    assert c.bert_config().hidden_dropout_prob == 0.2 and c.bert_config().num_hidden_layers == 2
    assert c.architecture_line().endswith("(do_lower_case given; False there)")
    with pytest.raises(ValueError, match=(
            f"embedding_size: embedding_size = 16 here, 32 in {tmp_path}/models/tiny/config.json")):
        FinetuningConfig("tiny", str(tmp_path), task_names=["rte"], embedding_size=16)
    with pytest.raises(ValueError, match="model_hparam_overrides.num_hidden_layers: "
                                         "num_hidden_layers = 3 here, 2 in "):
        FinetuningConfig("tiny", str(tmp_path), model_hparam_overrides={"num_hidden_layers": 3})
    with pytest.raises(ValueError, match="debug: hidden_size = 144 here, 64 in "):
        FinetuningConfig("tiny", str(tmp_path), debug=True,
                         init_checkpoint=str(tmp_path / "models" / "tiny"))
    # A debug pretraining run's encoder is the debug transformer: fine-tuned as it is.
    pretrained_dir(tmp_path, "dbg", debug=True, vocab_size=1024)
    c = FinetuningConfig("dbg", str(tmp_path), task_names=["rte"])
    pretraining = config_lib.pretrained_architecture(c.init_checkpoint)
    assert config_lib.encoder_shape(c) == pretraining["encoder"]
    assert c.bert_config() == get_bert_config(
        FinetuningConfig("x", "/d", debug=True, vocab_size=1024))
    # The saved config reloads without the pretrained directory.
    c.save(str(tmp_path / "saved.json"))
    os.remove(tmp_path / "models" / "dbg" / "config.json")
    assert FinetuningConfig.load(str(tmp_path / "saved.json")).to_dict() == c.to_dict()


def test_an_original_checkpoint_keeps_the_architecture_of_the_hparams(tmp_path):
    from tests.finetune.conftest import TINY_CHECKPOINT

    c = FinetuningConfig("m", str(tmp_path), init_checkpoint=TINY_CHECKPOINT, vocab_size=1024)
    assert c.vocab_size == 1024 and c.embedding_size == 128
    assert c.architecture_line().startswith(
        f"architecture: from the hparams ({TINY_CHECKPOINT} has no config.json)")
    assert FinetuningConfig("m", "/d", debug=True).architecture_line().startswith(
        "architecture: from the hparams (no init_checkpoint: random weights)")


def test_non_defaults_and_the_data_source():
    c = FinetuningConfig("m", "/d", task_names=["rte"], learning_rate=1e-4, seed=3,
                         data_source="tfds", tfds_data_dir="/tfds")
    assert c.non_defaults() == {"seed": 3, "data_source": "tfds", "tfds_data_dir": "/tfds"}
    with pytest.raises(ValueError, match="data_source must be one of files, tfds, got 'web'"):
        FinetuningConfig("m", "/d", data_source="web")
    with pytest.raises(ValueError, match='data_source "tfds": no tensorflow-datasets source '
                                         "for chunk, newsqa; the tasks that have one: cola, "):
        FinetuningConfig("m", "/d", task_names=["rte", "chunk", "newsqa"], data_source="tfds")
