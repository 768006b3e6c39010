"""Weights from checkpoints: the original fine-tuned MNLI checkpoint, a pretrained encoder
from an original checkpoint or one of our model directories, and mismatches named."""

import json

import numpy as np
import pytest

from electra_tf import checkpoints
from finetune import weights
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model, dummy_features
from tests.conftest import FIXTURES
from tests.finetune.conftest import MNLI, TINY_CHECKPOINT, task


def load_mnli(config, tasks):
    return weights.load_finetuned_original(str(MNLI / "ckpt" / "model.ckpt"),
                                           build_finetuning_model(config, tasks))


def test_original_mnli_checkpoint(mnli_config):
    model = load_mnli(mnli_config, [task(mnli_config, "mnli")])
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
        load_mnli(mnli_config, [task(mnli_config, "rte")])


def test_init_from_original_and_from_model_dir(tmp_path):
    kwargs = json.loads((FIXTURES / "original-tiny" / "config.json").read_text())[
        "pretraining_config_kwargs"]
    config = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"], **{
        k: kwargs[k] for k in ("embedding_size", "vocab_size", "model_hparam_overrides")})
    prefix = TINY_CHECKPOINT
    rte = [task(config, "rte")]
    a = build_finetuning_model(config, rte, prefix)
    checkpoints.convert_from_original(prefix, str(tmp_path / "models" / "tiny"))
    b = build_finetuning_model(config, rte, config.init_checkpoint)
    expected = checkpoints.read_checkpoint(prefix)["electra/embeddings/word_embeddings"]
    for model in (a, b):
        np.testing.assert_array_equal(model.original_variables()[
            "electra/embeddings/word_embeddings"].variable.numpy(), expected)
    features = dummy_features(rte, 2, 5)
    features["input_ids"][:] = 7
    features["input_mask"][:] = 1
    np.testing.assert_allclose(a(features)["electra"]["sequence_output"],
                               b(features)["electra"]["sequence_output"], atol=1e-6)
    wrong = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"], embedding_size=16,
                             init_checkpoint=prefix, vocab_size=1024,
                             model_hparam_overrides=kwargs["model_hparam_overrides"])
    with pytest.raises(ValueError, match="word_embeddings: checkpoint \\[1024, 32\\] vs "
                                         "config \\[1024, 16\\]"):
        build_finetuning_model(wrong, rte, prefix)


def test_missing_init_checkpoint_is_named(tmp_path):
    config = FinetuningConfig("tiny", str(tmp_path), task_names=["rte"])
    with pytest.raises(FileNotFoundError, match="init_checkpoint .*models/tiny: not found"):
        build_finetuning_model(config, [task(config, "rte")], config.init_checkpoint)
