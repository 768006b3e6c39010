"""Training and prediction of a fine-tuning model under a `tf.distribute` strategy.

Training is the original's: repeat → shuffle(100) → batch, the loss summed over the batch
(not averaged), one global-norm clip over the whole batch's gradients, AdamWeightDecay with
layer-wise LR decay. The update is `electra_tf.training.step.train_step`, the one training
step of the project.
"""

import numpy as np
import tensorflow as tf

from electra_tf import optimization
from electra_tf.training import distribute, progress, step as step_lib, summaries
from finetune.records import pad_to_multiple


def train_steps(config, n_records):
    """`int(n // train_batch_size * num_train_epochs)`; 0 steps is an error."""
    steps = int(n_records // config.train_batch_size * config.num_train_epochs)
    if steps < 1:
        raise ValueError(f"{n_records} training records make 0 steps at batch size "
                         f"{config.train_batch_size}")
    return steps


def build_optimizer(config, model, num_train_steps):
    """The original optimizer with layer-wise LR decay, built on the model's trainable
    variables (call it in the strategy's scope); loss scaling for mixed_float16."""
    decay = config.layerwise_lr_decay
    optimizer = optimization.create_optimizer(
        config.learning_rate, num_train_steps, config.weight_decay_rate,
        warmup_proportion=config.warmup_proportion,
        layerwise_lr_decay_power=decay if decay > 0 else -1.0,
        n_transformer_layers=config.bert_config().num_hidden_layers,
        variables=model.original_variables(), precision=config.precision,
        clip_norm_of_sparse_gradients=config.clip_norm_of_sparse_gradients)
    optimizer.build(model.trainable_variables)
    return optimizer


def make_train_step(config, model, optimizer, strategy):
    """A compiled update: `step(distributed_iterator)` → the batch's summed loss.

    Each replica sums the loss over its share of the batch; the optimizer sums gradients
    over replicas before its global-norm clip, so the update is that of the whole batch.
    """
    variables = model.trainable_variables

    @tf.function(jit_compile=config.jit_compile)
    def replica_step(batch):
        def loss_fn():
            loss = model(batch, training=True)["loss"]
            return loss, loss

        return step_lib.train_step(loss_fn, optimizer, variables)

    @tf.function
    def step(iterator):
        return strategy.reduce("sum", strategy.run(replica_step, args=(next(iterator),)),
                               axis=None)

    return step


# The progress line's name for the training loss: the optimised loss is the batch's sum
# (as the original); the line shows it per example, comparable with the dev loss.
LOSS_NAME = "train loss (mean per example)"
REPORT_EVERY = 10


def train(config, model, optimizer, features, seed, strategy, logdir=None):
    """Trains on `features` for `train_steps(...)` steps, with progress every 10 steps (or
    a progress bar on a terminal).

    The loss optimised is the batch's sum, as the original's; progress and TensorBoard
    show it divided by `train_batch_size` (`LOSS_NAME`).

    Args:
        config: the `FinetuningConfig`.
        model: a built `FinetuningModel`, in `strategy`'s scope.
        optimizer: its optimizer (`build_optimizer`).
        features: the training records {feature: array [N, ...]}, padded to whole batches.
        seed: the shuffle seed.
        strategy: a `tf.distribute.Strategy`.
        logdir: None, or a directory for TensorBoard scalars (the chief's only): `loss`
            (mean per example) and `learning_rate` (that of the update) every 10 steps and
            at the last.
    Returns:
        The number of steps run.
    Raises:
        FloatingPointError: the loss is not finite (nothing is saved).
    """
    num_train_steps = train_steps(config, len(features["task_id"]))
    dataset = (tf.data.Dataset.from_tensor_slices(features).repeat()
               .shuffle(100, seed=seed).batch(config.train_batch_size, drop_remainder=True))
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step = make_train_step(config, model, optimizer, strategy)
    report = progress.Progress(num_train_steps, config.train_batch_size, every=REPORT_EVERY,
                               bar=True)
    writer = tf.summary.create_file_writer(logdir) if logdir else None
    try:
        for i in range(1, num_train_steps + 1):
            logged = writer is not None and (i % REPORT_EVERY == 0 or i == num_train_steps)
            learning_rate = float(optimizer.learning_rate) if logged else None
            loss = float(step(iterator))
            if not np.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {i}; stopping without saving")
            per_example = loss / config.train_batch_size
            report.update(i, {LOSS_NAME: per_example})
            if logged:
                summaries.write_scalars(writer, i, {"loss": per_example,
                                                    "learning_rate": learning_rate})
    finally:
        if writer is not None:
            writer.close()
    return num_train_steps


def predict(model, features, batch_size, strategy):
    """Runs the model in eval mode on every record, in order.

    Returns:
        {task: {output: array [N, ...]}}.
    """
    if distribute.worker_info(strategy)[0] > 1:
        # Every worker predicts everything itself: the data is not split across workers.
        strategy = tf.distribute.get_strategy()
    n = len(features["task_id"])
    padded = pad_to_multiple(features, batch_size, len(model.tasks))
    dataset = tf.data.Dataset.from_tensor_slices(padded).batch(batch_size)
    options = tf.distribute.InputOptions(experimental_fetch_to_device=False)
    distributed = strategy.experimental_distribute_dataset(dataset, options)
    keys = {t.name for t in model.tasks}

    @tf.function
    def step(batch):
        out = strategy.run(lambda b: {k: v for k, v in model(b, training=False).items()
                                      if k in keys}, args=(batch,))
        return tf.nest.map_structure(lambda v: distribute.local_concat(strategy, v), out)

    outputs = {}
    for batch in distributed:
        for task, values in step(batch).items():
            for key, value in values.items():
                outputs.setdefault(task, {}).setdefault(key, []).append(value.numpy())
    return {t: {k: np.concatenate(v)[:n] for k, v in out.items()}
            for t, out in outputs.items()}
