"""What accelerators run, proven on CPU: a fine-tuning step under XLA equals the eager step.

Both runs start from the same seeded weights and read the same batches; only `jit_compile`
differs. Tolerance as in tests/electra_tf/pretraining/test_accelerator_paths.py: XLA
reorders float32 sums (relative error ~ n·2^-24, n the longest sum).
"""

import keras
import numpy as np
import tensorflow as tf

from finetune import records, tasks as tasks_lib, trainer
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model
from pretrain_data.tokenization import FullTokenizer
from tests.finetune.conftest import TINY

STEPS = 3
XLA_RTOL = 1e-5
# Adam divides each gradient entry by its own RMS, so the rounding of a near-zero entry
# carries into its update undamped: updates agree to 1e-4 of the learning rate (1e-3).
UPDATE_ATOL = 1e-4 * TINY["learning_rate"]


def run_steps(data_dir, jit_compile, dropout):
    """`STEPS` fine-tuning updates on RTE.

    Args:
        dropout: keep the encoder's and the head's dropout (0.1), or turn it off.
    Returns:
        (the summed loss of each step, [(variable path, value)] after them).
    """
    overrides = dict(TINY["model_hparam_overrides"])
    if not dropout:
        overrides.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], jit_compile=jit_compile,
                              **dict(TINY, model_hparam_overrides=overrides,
                                     init_checkpoint=None))
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file))
    _, features = records.featurize(config, tasks, "train", is_training=True)
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(1)
    model = build_finetuning_model(config, tasks)
    if not dropout:
        model.heads["rte"].dropout.rate = 0.0  # the head's [CLS] dropout is fixed at 0.1
    optimizer = trainer.build_optimizer(config, model, num_train_steps=10)
    dataset = tf.data.Dataset.from_tensor_slices(features).repeat().batch(
        config.train_batch_size, drop_remainder=True)
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step = trainer.make_train_step(config, model, optimizer, strategy)
    losses = [float(step(iterator)) for _ in range(STEPS)]
    return losses, [(v.path, v.numpy()) for v in model.trainable_variables]


def assert_same_steps(actual, expected):
    np.testing.assert_allclose(actual[0], expected[0], rtol=XLA_RTOL)
    assert len(actual[1]) == len(expected[1])
    # In order: Keras numbers the layers of a second model differently.
    for (_, value), (name, expected_value) in zip(actual[1], expected[1]):
        np.testing.assert_allclose(value, expected_value, rtol=XLA_RTOL, atol=UPDATE_ATOL,
                                   err_msg=name)


def test_an_xla_fine_tuning_step_equals_the_eager_step(data_dir):
    eager = run_steps(data_dir, jit_compile=False, dropout=False)
    assert_same_steps(run_steps(data_dir, jit_compile=True, dropout=False), eager)


def test_an_xla_fine_tuning_step_with_dropout_equals_the_eager_step(data_dir):
    eager = run_steps(data_dir, jit_compile=False, dropout=True)
    assert_same_steps(run_steps(data_dir, jit_compile=True, dropout=True), eager)
