"""The scale of the fine-tuning loss, by value: the original loop optimises the batch's sum
of per-example losses (and logs it per example); the Keras path reports the batch mean.

The per-example losses are recomputed here from the model's raw outputs (NumPy for the
values, plain TensorFlow ops for the gradients), not through the heads' loss code.
"""

import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints
from finetune import keras_task, synthetic, tasks as tasks_lib, trainer
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES, REPO
from tests.finetune.conftest import TINY, TINY_CHECKPOINT, task

NO_DROPOUT = dict(TINY["model_hparam_overrides"], hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
BATCH = 6


class RecordingOptimizer:
    """Stands in for the optimizer: keeps the gradients it is given, updates nothing."""

    def __init__(self, variables):
        self.gradients = [tf.Variable(tf.zeros_like(v)) for v in variables]

    def scale_loss(self, loss):
        return loss

    def apply(self, grads, variables):
        for recorded, grad in zip(self.gradients, grads, strict=True):
            recorded.assign(tf.convert_to_tensor(grad))


def log_softmax(x):
    x = x.astype(np.float64) - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


@pytest.fixture(scope="module")
def two_task_batch():
    """An RTE + STS model without dropout, and a batch of both tasks and one padding row."""
    config = FinetuningConfig("m", "/d", task_names=["rte", "sts"], **dict(
        TINY, init_checkpoint=None, model_hparam_overrides=NO_DROPOUT))
    tasks = [task(config, "rte"), task(config, "sts")]
    keras.utils.set_random_seed(5)
    model = build_finetuning_model(config, tasks)
    for head in model.heads.values():
        head.dropout.rate = 0.0  # the heads' [CLS] dropout is fixed at 0.1
    rng = np.random.default_rng(0)
    s = config.max_seq_length
    batch = {"input_ids": rng.integers(200, 1000, (BATCH, s)).astype(np.int32),
             "input_mask": np.ones((BATCH, s), np.int32),
             "segment_ids": np.zeros((BATCH, s), np.int32),
             "task_id": np.array([0, 1, 0, 1, 0, 2], np.int32),  # 2 = padding: no loss
             "rte_eid": np.arange(BATCH, dtype=np.int32),
             "rte_label_ids": np.array([1, 0, 0, 1, 1, 0], np.int32),
             "sts_eid": np.arange(BATCH, dtype=np.int32),
             "sts_targets": np.array([0.2, 0.8, 0.0, 0.4, 1.0, 0.6], np.float32)}
    return config, model, batch


def summed_loss(outputs, batch):
    """Σ over the batch of each example's own task loss, from the raw outputs (float64)."""
    ce = -np.take_along_axis(log_softmax(outputs["rte"]["logits"].numpy()),
                             batch["rte_label_ids"][:, None], -1)[:, 0]
    se = (outputs["sts"]["predictions"].numpy().astype(np.float64) - batch["sts_targets"]) ** 2
    per_example = np.select([batch["task_id"] == 0, batch["task_id"] == 1], [ce, se], 0.0)
    return per_example.sum(), per_example


def test_train_step_optimises_the_batch_sum(two_task_batch):
    config, model, batch = two_task_batch
    variables = model.trainable_variables
    optimizer = RecordingOptimizer(variables)
    strategy = tf.distribute.get_strategy()
    step = trainer.make_train_step(config, model, optimizer, strategy)
    dataset = tf.data.Dataset.from_tensor_slices(batch).batch(BATCH)
    loss = float(step(iter(strategy.experimental_distribute_dataset(dataset))))

    expected, per_example = summed_loss(model(batch, training=False), batch)
    assert per_example[-1] == 0 and np.all(per_example[:-1] > 0)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # The gradient handed to the optimizer is that of the sum (not of the mean).
    with tf.GradientTape() as tape:
        out = model(batch, training=True)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(batch["rte_label_ids"],
                                                            out["rte"]["logits"])
        se = tf.square(out["sts"]["predictions"] - batch["sts_targets"])
        task_id = batch["task_id"]
        total = tf.reduce_sum(tf.where(task_id == 0, ce, tf.where(task_id == 1, se, 0.0)))
    for variable, grad, recorded in zip(variables, tape.gradient(total, variables),
                                        optimizer.gradients):
        np.testing.assert_allclose(recorded.numpy(), tf.convert_to_tensor(grad).numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=variable.path)


def test_keras_path_reports_the_batch_mean(tmp_path):
    """`task_model`'s loss (what `fit`/`evaluate` log) is the mean over examples."""
    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    synthetic.write_glue_data(str(tmp_path), ["sst"], train=8, dev=12, test=1, seed=0)
    tiny = str(tmp_path / "models" / "tiny")
    checkpoints.convert_from_original(TINY_CHECKPOINT, tiny, checkpoints.config_for_dir(
        tiny, str(REPO / "configs" / "original_tiny.json")))
    config = FinetuningConfig("tiny", str(tmp_path), task_names=["sst"], max_seq_length=16)
    sst = tasks_lib.get_task(config, "sst", FullTokenizer(config.vocab_file))
    model = keras_task.task_model(tiny, sst)
    dev = keras_task.task_dataset(sst, "dev", 4)
    logits = model.predict(dev, verbose=0)
    labels = np.concatenate([y.numpy() for _, y in dev])
    ce = -np.take_along_axis(log_softmax(logits), labels[:, None], -1)[:, 0]
    result = model.evaluate(dev, verbose=0, return_dict=True)
    assert result["loss"] == pytest.approx(ce.mean(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == labels), rel=1e-6)
