"""The global-norm clip of fine-tuning, where the encoder's word embeddings are only looked up.

Fine-tuning the original MNLI fixture for a few steps through the fine-tuning trainer's own
step (`make_train_step`; dropout off, the head's too; the same batch every step): the norm
the optimizer clips with is, each step, the one computed by hand in NumPy from that step's
gradients: the word-embedding rows squared per lookup off TPU, summed per token id first
under the TPU setting.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from finetune import trainer
from finetune.config import FinetuningConfig
from tests.electra_tf.optimization.test_clip_norm import original_global_norms
from tests.finetune.conftest import MNLI, task
from tests.finetune.test_weights import load_mnli

WORDS = "electra/embeddings/word_embeddings"
STEPS = 3


def hand_norms(model, optimizer, batch):
    """(per-lookup, dense) global norms of the gradients of the batch's loss, in NumPy."""
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
        loss = model(batch, training=True)["loss"]
    grads = tape.gradient(loss, variables)
    names = [optimizer.original_name(v) for v in variables]
    assert isinstance(grads[names.index(WORDS)], tf.IndexedSlices)  # only looked up
    return original_global_norms(zip(names, grads))


def fine_tune(clip_norm_of_sparse_gradients=None, use_tpu=False):
    """[(norm the optimizer clipped with, hand per-lookup norm, hand dense norm)] per step."""
    kwargs = json.loads((MNLI / "config.json").read_text())["finetuning_config_kwargs"]
    kwargs["model_hparam_overrides"] = dict(kwargs["model_hparam_overrides"],
                                            hidden_dropout_prob=0.0,
                                            attention_probs_dropout_prob=0.0)
    config = FinetuningConfig("tiny", "/nonexistent", use_tpu=use_tpu,
                              clip_norm_of_sparse_gradients=clip_norm_of_sparse_gradients,
                              **kwargs)
    model = load_mnli(config, [task(config, "mnli")])
    model.heads["mnli"].dropout.rate = 0.0  # the head's fixed 0.1, as the original's
    strategy = tf.distribute.get_strategy()
    optimizer = trainer.build_optimizer(config, model, num_train_steps=10)
    batch = {k: tf.constant(v) for k, v in np.load(MNLI / "inputs.npz").items()}
    iterator = iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(batch).repeat()))
    step = trainer.make_train_step(config, model, optimizer, strategy)
    seen = []
    for _ in range(STEPS):
        hand = hand_norms(model, optimizer, batch)
        step(iterator)
        seen.append((float(optimizer.global_norm.numpy()), *hand))
    return seen


@pytest.fixture(scope="module")
def per_lookup():
    return fine_tune()  # the default off TPU


def test_the_norm_each_step_is_the_per_lookup_one_by_hand(per_lookup):
    for t, (seen, by_lookup, dense) in enumerate(per_lookup, start=1):
        assert seen > 1  # the clip acts
        assert seen == pytest.approx(by_lookup, rel=2e-6), t
        assert abs(by_lookup / dense - 1) > 1e-3, t  # distinguishable at that tolerance


def test_the_tpu_setting_clips_with_the_dense_norm(per_lookup):
    for run in (fine_tune(use_tpu=True), fine_tune("dense")):
        for t, (seen, _, dense) in enumerate(run, start=1):
            assert seen == pytest.approx(dense, rel=2e-6), t
        assert run[0][0] != pytest.approx(per_lookup[0][0], rel=1e-4)


def test_the_default_follows_use_tpu_and_a_bad_value_is_refused():
    assert FinetuningConfig("m", "/d").clip_norm_of_sparse_gradients == "per_lookup"
    assert FinetuningConfig("m", "/d", use_tpu=True).clip_norm_of_sparse_gradients == "dense"
    assert FinetuningConfig("m", "/d", use_tpu=True, clip_norm_of_sparse_gradients="per_lookup"
                            ).clip_norm_of_sparse_gradients == "per_lookup"
    with pytest.raises(ValueError, match="clip_norm_of_sparse_gradients must be one of"):
        FinetuningConfig("m", "/d", clip_norm_of_sparse_gradients="dense_rows")
