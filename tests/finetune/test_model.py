"""The fine-tuning model: heads on one encoder, the summed loss, original variable names."""

import numpy as np
import tensorflow as tf

from finetune import model as model_lib
from tests.finetune.conftest import task


def test_combine_losses_sums_each_examples_own_task():
    # a sum over examples; task_id 2 (= #tasks) is padding and contributes nothing
    losses = [tf.constant([1.0, 2.0, 4.0]), tf.constant([10.0, 20.0, 40.0])]
    assert float(model_lib.combine_losses(losses, tf.constant([0, 1, 2]))) == 21.0


def test_heads_in_a_two_task_model(mnli_config):
    tasks = [task(mnli_config, "sts"), task(mnli_config, "chunk")]
    model = model_lib.build_finetuning_model(mnli_config, tasks)
    names = sorted(n for n in model.original_variables() if n.startswith("task_specific"))
    assert names == ["task_specific/chunk/dense/bias", "task_specific/chunk/dense/kernel",
                     "task_specific/sts/dense/bias", "task_specific/sts/dense/kernel"]
    features = model_lib.dummy_features(tasks, batch_size=2, seq_length=6)
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
