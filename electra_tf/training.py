"""Pretraining under tf.distribute: strategy, optimizer, checkpoints, resume, progress, eval.

The loss is `pretraining.Objective`; this module runs it. Determinism: one run seed fixes
the data order, the initial weights and, through per-example seeds, each example's masking
and sampling, so the loss of a batch does not depend on how it is split over replicas; the
data-iterator position and the dropout RNG state are checkpointed, so a killed run that is
restarted continues exactly where its last checkpoint left it.
"""

import collections
import datetime
import json
import math
import os
import random
import time

import keras
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from electra_tf import checkpoints, modeling, optimization, pretraining
from pretrain_data import reader, tokenization


def get_strategy(config):
    """The `tf.distribute` strategy named by `config.strategy` (`use_tpu` means "tpu")."""
    kind = "tpu" if config.use_tpu else config.strategy
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multi_worker' reads the cluster from the TF_CONFIG "
                             "environment variable, which is not set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=config.tpu_name, zone=config.tpu_zone, project=config.gcp_project)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def check_vocab(config):
    """The special-token ids of `config.vocab_file`; errors name the file and the problem."""
    if not tf.io.gfile.exists(config.vocab_file):
        raise FileNotFoundError(f"{config.vocab_file}: vocabulary not found")
    vocab = tokenization.load_vocab(config.vocab_file)
    if len(vocab) != config.vocab_size:
        raise ValueError(f"{config.vocab_file} has {len(vocab)} tokens but vocab_size is "
                         f"{config.vocab_size}; set \"vocab_size\": {len(vocab)} in --hparams")
    try:
        return pretraining.special_ids(vocab)
    except ValueError as e:
        raise ValueError(f"{config.vocab_file}: {e}") from None


def _dropout_states(models):
    """The RNG state variables of every dropout layer (Keras does not checkpoint them)."""
    states = {}
    for model in (models.generator, models.discriminator, models.encoder):
        if model is not None:
            for v in model.non_trainable_variables:
                if "seed_generator" in v.path:
                    states[id(v)] = v.value
    return list(states.values())


class Pretrainer:
    """Builds everything a pretraining run needs and runs it.

    Args:
        config: a `PretrainingConfig`.
        strategy: a `tf.distribute.Strategy`; by default the one `config.strategy` names.
        log: a function taking a line of progress text.

    Example:
    ```python
    trainer = Pretrainer(PretrainingConfig("m", "/data", debug=True))
    trainer.train()          # resumes from the latest checkpoint in config.model_dir
    print(trainer.evaluate())
    ```
    """

    def __init__(self, config, strategy=None, log=print):
        self.config = config
        self.log = log
        self.ids = check_vocab(config)
        self.strategy = strategy or get_strategy(config)
        self.workers, self.worker = worker_info(self.strategy)
        self.chief = self.worker == 0
        # Every worker saves (saving is collective) and keeps its own data position; the
        # chief's files are the model directory proper.
        self.save_dir = (config.model_dir if self.chief
                         else os.path.join(config.model_dir, f".worker-{self.worker}"))
        self.latest = tf.train.latest_checkpoint(self.save_dir)
        self.run_seed = self._run_seed()
        keras.utils.set_random_seed(self.run_seed)  # initial weights and dropout RNGs
        with self.strategy.scope():
            self.models = modeling.build_models(config)
            self.names = checkpoints.variable_map(self.models)
            self.variables = [m.variable for m in self.names.values()]
            optimizer = optimization.pretraining_optimizer(
                config, self.names, gradient_accumulation_steps=(
                    config.gradient_accumulation_steps
                    if config.gradient_accumulation_steps > 1 else None))
            if config.precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.variables)
            self.optimizer = optimizer
        self.objective = pretraining.Objective(config, self.models, self.ids, _global_sum)

    def _run_seed(self):
        """`config.seed`, else the seed of the run being resumed, else a fresh one."""
        if self.config.seed is not None:
            return int(self.config.seed)
        names = dict(tf.train.list_variables(self.latest)) if self.latest else {}
        if "run_seed/.ATTRIBUTES/VARIABLE_VALUE" in names:
            return int(tf.train.load_variable(self.latest, "run_seed/.ATTRIBUTES/VARIABLE_VALUE"))
        # A new run, or one continuing a converted original checkpoint (which has no seed).
        return random.SystemRandom().randrange(2**31)

    @property
    def step(self):
        """Optimizer updates done so far (the original's `global_step`)."""
        return int(self.optimizer.iterations.numpy())

    def input_iterator(self, batch_size, seed, is_training=True):
        """This worker's batches, each example with its own seed.

        Each worker reads its shard of the files into one batch per step, which its
        replicas then split (`_local_batch`). tf.distribute's own distributed iterators
        cannot be checkpointed; this plain iterator can, so a resumed run continues with
        exactly the batches the interrupted one would have seen.
        """
        workers, worker = self.workers, self.worker
        replicas = self.strategy.num_replicas_in_sync
        if batch_size % replicas:
            raise ValueError(f"batch size {batch_size} is not a multiple of the {replicas} "
                             "replicas")
        per_worker = batch_size // workers
        context = (tf.distribute.InputContext(workers, worker, workers) if workers > 1
                   else None)
        dataset = reader.get_dataset(self.config.pretrain_tfrecords, self.config.max_seq_length,
                                     batch_size, is_training=is_training,
                                     input_context=context, seed=seed)

        def add_seeds(i, batch):
            first = (i * workers + worker) * per_worker
            return dict(batch, seeds=pretraining.example_seeds(seed, first, per_worker))

        return iter(dataset.enumerate().map(add_seeds))

    def _local_batch(self, batch):
        """This replica's slice of its worker's batch."""
        context = tf.distribute.get_replica_context()
        local = context.num_replicas_in_sync // self.workers
        index = context.replica_id_in_sync_group % local
        size = tf.shape(batch["input_ids"])[0] // local
        return {k: v[index * size:(index + 1) * size] for k, v in batch.items()}

    def _step_fn(self, batch):
        batch = self._local_batch(batch)
        seeds = batch.pop("seeds")
        return train_step(self.objective, self.optimizer, self.variables, batch, seeds)

    def _make_train_loop(self):
        step_fn = tf.function(self._step_fn, jit_compile=self.config.jit_compile)

        @tf.function
        def train_loop(iterator, num_steps):
            totals = {k: tf.constant(0.0) for k in _SCALARS}
            for _ in tf.range(num_steps):
                out = self.strategy.run(step_fn, args=(next(iterator),))
                # Each replica's loss has the global denominator: their sum is the loss.
                totals = {k: totals[k] + self.strategy.reduce("sum", out[k], axis=None)
                          for k in totals}
            return {k: v / tf.cast(num_steps, tf.float32) for k, v in totals.items()}

        return train_loop

    def train(self):
        """Trains until `num_train_steps` updates, resuming from the latest checkpoint.

        Returns:
            The mean losses of the last logging interval.
        """
        config = self.config
        tf.io.gfile.makedirs(self.save_dir)
        if self.chief:
            checkpoints.write_model_dir_files(config, self.models, config.model_dir)
        iterator = self.input_iterator(config.train_batch_size, self.run_seed)
        run_seed = tf.Variable(self.run_seed, dtype=tf.int64, trainable=False)
        checkpoint = checkpoints.checkpoint_objects(
            self.models, self.optimizer, run_seed=run_seed, data=iterator,
            dropout_rng=_dropout_states(self.models))
        manager = tf.train.CheckpointManager(
            checkpoint, self.save_dir, max_to_keep=config.keep_checkpoint_max or None,
            checkpoint_name="ckpt")
        if self.latest is not None:
            # A converted original checkpoint has no iterator or RNG state: partial is fine.
            checkpoint.read(self.latest).expect_partial()
            self.log(f"Resuming from {self.latest} at step {self.step}")
        writer = tf.summary.create_file_writer(os.path.join(self.save_dir, "train"))
        train_loop = self._make_train_loop()
        micro = max(1, config.gradient_accumulation_steps)
        start_step, start_time, last = self.step, time.time(), {}
        while self.step < config.num_train_steps:
            to_checkpoint = config.save_checkpoints_steps - self.step % config.save_checkpoints_steps
            n = min(config.iterations_per_loop, to_checkpoint, config.num_train_steps - self.step)
            try:
                last = {k: float(v) for k, v in
                        train_loop(iterator, tf.constant(n * micro)).items()}
            except tf.errors.InvalidArgumentError as e:
                if "max_seq_length" not in e.message:
                    raise
                raise ValueError(f"{config.pretrain_tfrecords}: {_first_line(e.message)}") from None
            if not math.isfinite(last["loss"]):
                raise FloatingPointError(
                    f"loss is {last['loss']} at step {self.step}; stopping without saving. "
                    f"The last good checkpoint is {manager.latest_checkpoint}")
            self._log_progress(last, start_step, start_time)
            with writer.as_default(step=self.step):
                for key, value in dict(last, learning_rate=self._learning_rate()).items():
                    write_scalar(key, value)
            if self.step % config.save_checkpoints_steps == 0 or self.step >= config.num_train_steps:
                manager.save(checkpoint_number=self.step)
        writer.flush()
        if self.chief:
            self.write_original_checkpoint()
        return last

    def write_original_checkpoint(self):
        """`<model_dir>/original/model.ckpt-<step>`: the original TF1 layout, Adam slots and
        `global_step` included, for any tool that reads original ELECTRA checkpoints."""
        prefix = os.path.join(self.config.model_dir, "original", f"model.ckpt-{self.step}")
        if tf.io.gfile.exists(prefix + ".index"):
            return prefix
        global_step, slots = optimization.export_original_state(self.optimizer)
        return checkpoints.save_original(self.models, prefix, global_step, slots)

    def _learning_rate(self):
        inner = getattr(self.optimizer, "inner_optimizer", self.optimizer)
        return float(inner._learning_rate(inner.iterations))

    def _log_progress(self, losses, start_step, start_time):
        self.log(progress_line(
            self.step, self.config.num_train_steps, start_step, time.time() - start_time,
            self.config.train_batch_size * max(1, self.config.gradient_accumulation_steps),
            losses))

    def evaluate(self, num_steps=None, write=True):
        """The original's eval metrics (spec §4.7) on `num_eval_steps` batches, dropout off.

        Evaluation reads the training records, as the original does, with a seed of its own.
        Returns:
            dict of metric name -> float; also written to `results_{txt,json}` if `write`.
        """
        config = self.config
        num_steps = num_steps or config.num_eval_steps
        iterator = self.input_iterator(config.eval_batch_size, self.run_seed + 1,
                                       is_training=False)
        step_fn = tf.function(lambda batch: _eval_outputs(self.objective,
                                                          self._local_batch(batch)))
        totals, auc = collections.defaultdict(float), keras.metrics.AUC(num_thresholds=200)
        for _ in range(num_steps):
            out = self.strategy.run(step_fn, args=(next(iterator),))
            local = {k: tf.concat(self.strategy.experimental_local_results(v), 0).numpy()
                     for k, v in out.items()}
            for key, value in local.items():
                if key.endswith(("/num", "/den")):
                    totals[key] += float(value.sum())
            if "auc/labels" in local:
                auc.update_state(local["auc/labels"].ravel(), local["auc/probs"].ravel())
        results = {"global_step": self.step}
        for key in sorted(k[:-len("/num")] for k in totals if k.endswith("/num")):
            # As tf.metrics: a metric with no weight at all is 0.
            results[key] = totals[key + "/num"] / max(totals[key + "/den"], 1e-12)
        if "disc_loss" in results:
            results["disc_auc"] = float(auc.result())
        if write:
            write_results(config, results)
        return results


_SCALARS = ("loss", "mlm_loss", "disc_loss")


def progress_line(step, total, start_step, elapsed, batch_size, losses):
    """`step 40/100 (40.0%) loss 1.2345 | 12.3 seq/s | elapsed 0:00:13 ETA 0:00:20`.

    Args:
        step, total: steps done and to do; start_step: the step this run started at.
        elapsed: seconds since it started; batch_size: sequences per step.
        losses: {name: float} to show.
    """
    rate = (step - start_step) / max(elapsed, 1e-9)
    eta = (total - step) / max(rate, 1e-9)
    return (f"step {step}/{total} ({100.0 * step / total:.1f}%) "
            + " ".join(f"{k} {v:.4f}" for k, v in losses.items())
            + f" | {rate * batch_size:.1f} seq/s | elapsed {_hms(elapsed)} ETA {_hms(eta)}")


def train_step(objective, optimizer, variables, features, seeds):
    """One update: the objective's total loss, its gradients, the optimizer.

    Args:
        objective: a `pretraining.Objective`.
        optimizer: its optimizer (global-norm clipping is inside it).
        variables: every trainable variable (`checkpoints.variable_map` order).
        features, seeds: this replica's batch and per-example seeds.
    Returns:
        dict of scalar losses (this replica's share of the batch loss).
    """
    with tf.GradientTape() as tape:
        outputs = objective(features, seeds, training=True)
        loss = optimizer.scale_loss(outputs["total_loss"])
    optimizer.apply(tape.gradient(loss, variables), variables)
    return _scalars(outputs)


def _scalars(outputs):
    return {"loss": outputs["total_loss"], "mlm_loss": outputs["mlm"]["loss"],
            "disc_loss": outputs["disc"]["loss"] if "disc" in outputs else tf.constant(0.0)}


def worker_info(strategy):
    """(number of workers, this worker's index); the chief, if any, is worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 1, 0
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if resolver.task_type == "chief":
        return chiefs + workers, 0
    return chiefs + workers, chiefs + resolver.task_id


def _first_line(message):
    return next((line for line in message.splitlines() if "max_seq_length" in line), message)


def _global_sum(value):
    """Sums a scalar over the replicas of the current step (identity outside a strategy)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce("sum", value)


def _eval_outputs(objective, batch):
    """Per-example numerators and denominators of the original's eval metrics (`metric_fn`).

    Each metric is `Σ num / Σ den` over the eval set: weighted accuracies and means as
    `tf.metrics.accuracy`/`mean`; `disc_auc` gets the (label, prob) points themselves.
    """
    batch = dict(batch)
    seeds = batch.pop("seeds")
    out = objective(batch, seeds, training=False)
    masked, mlm = out["masked"], out["mlm"]
    w, ids = masked.masked_lm_weights, masked.masked_lm_ids

    def ratio(name, num, den):
        return {f"{name}/num": tf.reduce_sum(num, -1), f"{name}/den": tf.reduce_sum(den, -1)}

    def hits(a, b):
        return tf.cast(tf.equal(a, b), tf.float32)

    result = {
        **ratio("masked_lm_accuracy", w * hits(mlm["preds"], ids), w),
        **ratio("masked_lm_loss", w * mlm["per_example_loss"], w),
        # The eval `loss` is the mean of `total_loss` over batches: one point per batch.
        "loss/num": tf.reshape(out["total_loss"], [1]), "loss/den": tf.ones([1]),
    }
    if "disc" in out:
        result.update(ratio("sampled_masked_lm_accuracy", w * hits(out["sampled_tokids"], ids),
                            w))
    if "disc" in out and objective.config.disc_weight > 0:
        disc, mask = out["disc"], tf.cast(masked.input_mask, tf.float32)
        right = hits(disc["labels"], disc["preds"])
        preds, labels = tf.cast(disc["preds"], tf.float32), tf.cast(disc["labels"], tf.float32)
        result.update({
            "disc_loss/num": disc["per_example_loss"],
            "disc_loss/den": tf.ones_like(disc["per_example_loss"]),
            **ratio("disc_accuracy", right * mask, mask),
            **ratio("disc_precision", right * preds * mask, preds * mask),
            **ratio("disc_recall", right * labels * mask, labels * mask),
            # Padding enters the AUC as (label 0, prob 0) points, as in the original.
            "auc/labels": labels * mask, "auc/probs": disc["probs"] * mask,
        })
    return result


def write_results(config, results):
    """Writes `results_txt` and `results_json` (the original never writes its results)."""
    tf.io.gfile.makedirs(os.path.dirname(config.results_json))
    with tf.io.gfile.GFile(config.results_json, "w") as f:
        f.write(json.dumps(results, indent=1, sort_keys=True) + "\n")
    with tf.io.gfile.GFile(config.results_txt, "w") as f:
        f.write("\n".join(f"{k} = {v}" for k, v in sorted(results.items())) + "\n")


def write_scalar(tag, value):
    """A TensorBoard scalar, without a dependency on the tensorboard package.

    `tf.summary.scalar` needs tensorboard installed; the scalar plugin only needs this
    metadata, which TensorFlow's own protos can write.
    """
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    tf.summary.write(tag, tf.constant(value, tf.float32),
                     metadata=metadata.SerializeToString())


def _hms(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))


def train_or_eval(config, strategy=None, log=print):
    """The original's `train_or_eval`: exactly one of `do_train` / `do_eval`.

    Returns:
        The last training losses, or the eval results.
    """
    if config.do_train == config.do_eval:
        raise ValueError("Exactly one of do_train and do_eval must be true")
    log("Config:\n" + json.dumps(config.to_dict(), indent=1, sort_keys=True))
    trainer = Pretrainer(config, strategy, log)
    if config.do_train:
        return trainer.train()
    if trainer.latest is None:
        raise FileNotFoundError(f"{config.model_dir}: no checkpoint to evaluate")
    checkpoints.checkpoint_objects(trainer.models).read(trainer.latest).expect_partial()
    results = trainer.evaluate()
    log("\n".join(f"{k} = {v}" for k, v in sorted(results.items())))
    return results


