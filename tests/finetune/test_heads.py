"""The classification, regression and tagging heads: losses, and logits without labels."""

import numpy as np
import tensorflow as tf

from finetune import model as model_lib
from finetune.config import FinetuningConfig
from finetune.heads import Head, classification_losses, regression_losses, tagging_losses
from tests.finetune.conftest import task


def test_losses_by_hand():
    logits = tf.constant([[0.0, np.log(3.0)]])  # softmax = (1/4, 3/4)
    np.testing.assert_allclose(classification_losses(logits, [1]), [np.log(4 / 3)], rtol=1e-6)
    np.testing.assert_allclose(regression_losses(tf.constant([0.5, 0.1]), [0.3, 0.1]),
                               [0.04, 0.0], atol=1e-7)
    tag_logits = tf.constant([[[0.0, 0.0], [0.0, np.log(3.0)], [5.0, 1.0]]])
    # positions 0 and 1 count: ln 2 + ln(4/3); position 2 is masked out
    np.testing.assert_allclose(tagging_losses(tag_logits, [[1, 1, 0]], [[1.0, 1.0, 0.0]]),
                               [np.log(2) + np.log(4 / 3)], rtol=1e-6)


def test_logits_without_labels_equal_the_call():
    """`Head.logits` (what serving calls) gives the call's logits: [CLS] for classification
    and regression, every token for tagging (the call reads the labelled positions)."""
    config = FinetuningConfig("m", "/d", task_names=["mnli", "sts", "chunk"],
                              model_hparam_overrides={"hidden_size": 16, "num_hidden_layers": 1,
                                                      "num_attention_heads": 2},
                              embedding_size=16, vocab_size=64, max_seq_length=6)
    tasks = [task(config, name) for name in config.task_names]
    model = model_lib.build_finetuning_model(config, tasks)
    features = model_lib.dummy_features(tasks, batch_size=2, seq_length=6)
    features["input_ids"][:] = np.arange(12).reshape(2, 6) + 5
    features["input_mask"][:] = 1
    features["chunk_labeled_positions"][:, :3] = [[1, 3, 4], [2, 4, 5]]
    out = model(features, training=False)
    encoder_outputs = model.encoder({k: features[k] for k in
                                     ("input_ids", "input_mask", "segment_ids")})
    mnli, sts, chunk = (model.heads[n] for n in config.task_names)
    assert isinstance(mnli, Head) and chunk.task_type == "tagging"
    np.testing.assert_allclose(mnli.logits(encoder_outputs), out["mnli"]["logits"], atol=1e-6)
    np.testing.assert_allclose(sts.logits(encoder_outputs)[:, 0], out["sts"]["predictions"],
                               atol=1e-6)
    per_token = chunk.logits(encoder_outputs)
    assert per_token.shape == (2, 6, 5) and per_token.dtype == tf.float32
    gathered = np.take_along_axis(per_token.numpy(),
                                  features["chunk_labeled_positions"][:, :, None], 1)
    np.testing.assert_allclose(gathered, out["chunk"]["logits"], atol=1e-6)
