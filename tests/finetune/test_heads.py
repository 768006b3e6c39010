"""Heads, losses, the original MNLI checkpoint, and layer-wise LR multipliers."""

import json

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import optimization
from finetune import heads
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from tests.conftest import FIXTURES

MNLI = FIXTURES / "original-tiny-mnli"


def task(name, config, num_tags=5):
    """A real task object (no tokenizer needed to build heads); chunking gets `num_tags`."""
    t = tasks_lib.get_task(config, name, tokenizer=None)
    if name == "chunk":
        t.label_mapping = {f"tag{i}": i for i in range(num_tags)}
    return t


@pytest.fixture(scope="module")
def mnli_config():
    kwargs = json.loads((MNLI / "config.json").read_text())["finetuning_config_kwargs"]
    return FinetuningConfig("tiny", "/nonexistent", **kwargs)


def test_original_mnli_checkpoint(mnli_config):
    model = heads.load_finetuned_original(str(MNLI / "ckpt" / "model.ckpt"), mnli_config,
                                          [task("mnli", mnli_config)])
    inputs = dict(np.load(MNLI / "inputs.npz"))
    expected = np.load(MNLI / "outputs_eval.npz")
    outputs = model(inputs, training=False)
    np.testing.assert_allclose(outputs["mnli"]["logits"], expected["mnli.logits"], atol=1e-5)
    np.testing.assert_allclose(outputs["mnli"]["loss"], expected["mnli.loss"], atol=1e-5)
    np.testing.assert_allclose(float(outputs["loss"]), expected["loss"], atol=1e-5)
    np.testing.assert_array_equal(outputs["mnli"]["predictions"], expected["mnli.predictions"])
    np.testing.assert_array_equal(outputs["mnli"]["eid"], expected["mnli.eid"])


def test_head_mismatch_is_named(mnli_config):
    with pytest.raises(ValueError, match="task_specific/rte/dense/kernel"):
        heads.load_finetuned_original(str(MNLI / "ckpt" / "model.ckpt"), mnli_config,
                                      [task("rte", mnli_config)])


def test_losses_by_hand():
    logits = tf.constant([[0.0, np.log(3.0)]])  # softmax = (1/4, 3/4)
    np.testing.assert_allclose(heads.classification_losses(logits, [1]), [np.log(4 / 3)],
                               rtol=1e-6)
    np.testing.assert_allclose(heads.regression_losses(tf.constant([0.5, 0.1]), [0.3, 0.1]),
                               [0.04, 0.0], atol=1e-7)
    tag_logits = tf.constant([[[0.0, 0.0], [0.0, np.log(3.0)], [5.0, 1.0]]])
    # positions 0 and 1 count: ln 2 + ln(4/3); position 2 is masked out
    np.testing.assert_allclose(heads.tagging_losses(tag_logits, [[1, 1, 0]], [[1.0, 1.0, 0.0]]),
                               [np.log(2) + np.log(4 / 3)], rtol=1e-6)
    # a sum over examples; task_id 2 (= #tasks) is padding and contributes nothing
    losses = [tf.constant([1.0, 2.0, 4.0]), tf.constant([10.0, 20.0, 40.0])]
    assert float(heads.combine_losses(losses, tf.constant([0, 1, 2]))) == 21.0


def test_heads_in_a_two_task_model(mnli_config):
    tasks = [task("sts", mnli_config), task("chunk", mnli_config)]
    model = heads.build_finetuning_model(mnli_config, tasks)
    names = sorted(n for n in model.original_variables() if n.startswith("task_specific"))
    assert names == ["task_specific/chunk/dense/bias", "task_specific/chunk/dense/kernel",
                     "task_specific/sts/dense/bias", "task_specific/sts/dense/kernel"]
    features = heads.dummy_features(tasks, batch_size=2, seq_length=6)
    features["chunk_labeled_positions"][:, :2] = [[1, 3], [2, 4]]
    features["chunk_labels_mask"][:, :2] = 1.0
    features["task_id"][:] = [0, 1]
    out = model(features, training=False)
    assert out["sts"]["predictions"].shape == (2,)
    assert out["chunk"]["logits"].shape == (2, mnli_config.max_seq_length, 5)
    expected = out["sts"]["loss"][0] + out["chunk"]["loss"][1]
    np.testing.assert_allclose(out["loss"], expected, rtol=1e-6)
    # dropout on [CLS] only in training
    a = model(features, training=True)["sts"]["predictions"]
    assert not np.allclose(a, out["sts"]["predictions"])


def test_layerwise_lr_multipliers():
    config = FinetuningConfig("m", "/d", task_names=["mnli"], model_size="base",
                              model_hparam_overrides={"hidden_size": 64, "intermediate_size": 64,
                                                      "num_attention_heads": 1})
    model = heads.build_finetuning_model(config, [task("mnli", config)])
    names = model.original_variables()
    m = optimization.layerwise_lr_multipliers(names, 0.8, 12)
    assert m["electra/embeddings/word_embeddings"] == pytest.approx(0.8 ** 14)
    assert m["electra/encoder/layer_0/output/dense/kernel"] == pytest.approx(0.8 ** 13)
    assert m["electra/encoder/layer_11/output/dense/kernel"] == pytest.approx(0.8 ** 2)
    assert m["task_specific/mnli/dense/kernel"] == 1.0
    optimizer = optimization.create_optimizer(1e-4, 10, layerwise_lr_decay_power=0.8,
                                              n_transformer_layers=12, variables=names)
    optimizer.build([m.variable for m in names.values()])
    assert optimizer.lr_multiplier(names["task_specific/mnli/dense/bias"].variable) == 1.0
    assert optimizer.lr_multiplier(names["electra/embeddings/word_embeddings"].variable) == (
        pytest.approx(0.8 ** 14))


def test_init_from_original_and_from_model_dir(tmp_path):
    from electra_tf import checkpoints

    kwargs = json.loads((FIXTURES / "original-tiny" / "config.json").read_text())[
        "pretraining_config_kwargs"]
    config = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"], **{
        k: kwargs[k] for k in ("embedding_size", "vocab_size", "model_hparam_overrides")})
    prefix = str(FIXTURES / "original-tiny" / "ckpt" / "model.ckpt")
    rte = [task("rte", config)]
    a = heads.build_finetuning_model(config, rte, prefix)
    checkpoints.convert_from_original(prefix, str(tmp_path / "models" / "tiny"))
    b = heads.build_finetuning_model(config, rte, config.init_checkpoint)
    expected = checkpoints.read_checkpoint(prefix)["electra/embeddings/word_embeddings"]
    for model in (a, b):
        np.testing.assert_array_equal(model.original_variables()[
            "electra/embeddings/word_embeddings"].variable.numpy(), expected)
    features = heads.dummy_features(rte, 2, 5)
    features["input_ids"][:] = 7
    features["input_mask"][:] = 1
    np.testing.assert_allclose(a(features)["electra"]["sequence_output"],
                               b(features)["electra"]["sequence_output"], atol=1e-6)
    wrong = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"], embedding_size=16,
                             vocab_size=1024,
                             model_hparam_overrides=kwargs["model_hparam_overrides"])
    with pytest.raises(ValueError, match="word_embeddings: checkpoint \\[1024, 32\\] vs "
                                         "config \\[1024, 16\\]"):
        heads.build_finetuning_model(wrong, rte, prefix)
