"""FinetuningConfig: every default, the original assembly order, derived paths."""

import os

import pytest

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
