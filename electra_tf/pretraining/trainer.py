"""Pretraining under tf.distribute: the loop, checkpoints and resume, eval, progress,
TensorBoard scalars, learning curves and the end-of-run summary.

The loss is `pretraining.objective.Objective`; this module runs it. Determinism: one run
seed fixes the data order, the initial weights and, through per-example seeds, each
example's masking and sampling, so the loss of a batch does not depend on how it is split
over replicas; the data-iterator position and the dropout RNG state are checkpointed, so a
killed run that is restarted continues exactly where its last checkpoint left it.
"""

import contextlib
import json
import math
import os
import random
import time

import keras
import tensorflow as tf

from electra_common import files, lock
from electra_tf import checkpoints, optimization
from electra_tf.models import build_models
from electra_tf.models.electra import encoders
from electra_tf.pretraining import helpers
from electra_tf.pretraining.metrics import EvalTotals, eval_outputs
from electra_tf.pretraining.objective import Objective
from electra_tf.training import (
    curves, distribute, divergence, progress, results as results_lib, step, summaries)
from pretrain_data import reader, tokenization


CURVES_FILE = "learning_curves.png"
# The training scalars that are losses (the others: `learning_rate`).
LOSSES = ("loss", "mlm_loss", "disc_loss")


def _dropout_states(models):
    """The RNG state variables of every dropout layer (Keras does not checkpoint them)."""
    return [dropout.seed_generator.state for encoder in encoders(models)
            for dropout in encoder.dropout_layers() if dropout.rate > 0]


class Pretrainer:
    """Builds everything a pretraining run needs and runs it.

    Args:
        config: a `PretrainingConfig`.
        strategy: a `tf.distribute.Strategy`; by default the one `config.strategy` names.
        log: a function taking a line of progress text.
        allow_changes: hparams that may differ from the run being resumed although they
            are not in `config.RESUMABLE` (e.g. a lower `learning_rate` after divergence).

    Example:
    ```python
    trainer = Pretrainer(PretrainingConfig("m", "/data", debug=True))
    trainer.train()          # resumes from the latest checkpoint in config.model_dir
    print(trainer.evaluate())
    ```
    """

    def __init__(self, config, strategy=None, log=print, allow_changes=()):
        self.config = config
        self.log = log
        vocab = tokenization.check_vocab(config.vocab_file, config.vocab_size)
        self.ids = helpers.special_ids(vocab)
        self.strategy = strategy or distribute.get_strategy(config)
        self.workers, self.worker = distribute.worker_info(self.strategy)
        self.chief = self.worker == 0
        # Every worker saves (saving is collective) and keeps its own data position; the
        # chief's files are the model directory proper.
        self.save_dir = (config.model_dir if self.chief
                         else os.path.join(config.model_dir, f".worker-{self.worker}"))
        self.eval_records = config.eval_tfrecords or config.pretrain_tfrecords
        if config.eval_tfrecords and (config.do_eval or config.eval_every_steps):
            try:
                reader.list_input_files(config.eval_tfrecords)
            except FileNotFoundError as e:
                raise FileNotFoundError(f"eval_tfrecords: {e}") from None
        self.latest = self._resume_from()
        self._eval_step = None  # traced once, on the first eval
        if self.latest is not None:  # before anything is written into the directory
            checkpoints.read_components(config.model_dir)
            self._check_resumed_config(allow_changes)
        self.run_seed = self._run_seed()
        keras.utils.set_random_seed(self.run_seed)  # initial weights and dropout RNGs
        with self.strategy.scope():
            self.models = build_models(config)
            self.names = checkpoints.variable_map(self.models)
            self.variables = [m.variable for m in self.names.values()]
            self.optimizer = optimization.pretraining_optimizer(config, self.names)
            self.optimizer.build(self.variables)
        self.objective = Objective(config, self.models, self.ids, distribute.global_sum)

    def _resume_from(self):
        """The checkpoint to resume from, None for a new run.

        One worker: the newest that reads in full. Several: the newest step that every
        worker has saved (saving is not collective: a worker killed while saving leaves
        its peers one checkpoint ahead).
        """
        if self.workers == 1:
            return checkpoints.latest_readable(self.save_dir, self.log)
        mine = checkpoints.checkpoint_steps(self.save_dir)
        every = distribute.gather_lists(self.strategy, mine)
        common = set.intersection(*map(set, every))
        if not common:
            if any(every):
                raise ValueError(
                    f"{self.save_dir}: the workers have no checkpoint step in common (this "
                    f"worker: {mine or 'none'}; all: {sorted(set(map(tuple, every)))}); a "
                    "worker was killed while saving and keep_checkpoint_max kept no older "
                    "one: delete the model directory's checkpoints to start again")
            return None
        path = os.path.join(self.save_dir, f"ckpt-{max(common)}")
        problem = checkpoints.unreadable(path)
        if problem:
            raise ValueError(f"checkpoint {path} cannot be read ({problem})")
        if max(common) != mine[-1]:
            self.log(f"Resuming from step {max(common)}, the newest checkpoint every worker "
                     f"has (this worker also has ckpt-{mine[-1]})")
        return path

    def _check_resumed_config(self, allow_changes):
        """Refuses hparams that differ from those of the run being resumed."""
        path = os.path.join(self.config.model_dir, checkpoints.CONFIG_FILE)
        if not files.exists(path):
            return
        resumable, fixed = self.config.changes_since(path)
        if fixed.get("seed", (0,))[0] is None:  # a run without one (converted) may get one
            resumable["seed"] = fixed.pop("seed")
        allowed = {k: fixed.pop(k) for k in list(fixed) if k in allow_changes}
        if fixed:
            raise ValueError(
                f"{path}: {self.latest} was trained with other hparams: " + "; ".join(
                    f"{k} was {was!r}, now {now!r}" for k, (was, now) in fixed.items())
                + ". Keep the saved values or use a new model name; to change them "
                "deliberately (shapes must stay the same), pass --allow-changed-hparams "
                + ",".join(fixed))
        for key, (was, now) in {**resumable, **allowed}.items():
            if key not in ("do_train", "do_eval"):
                self.log(f"Changed since the last run: {key} = {now!r} (was {was!r})")

    def _run_seed(self):
        """`config.seed`, else the seed of the run being resumed, else a fresh one."""
        if self.config.seed is not None:
            return int(self.config.seed)
        names = dict(tf.train.list_variables(self.latest)) if self.latest else {}
        if "run_seed/.ATTRIBUTES/VARIABLE_VALUE" in names:
            return int(tf.train.load_variable(self.latest, "run_seed/.ATTRIBUTES/VARIABLE_VALUE"))
        # A new run, or one continuing a converted original checkpoint (which has no seed).
        return random.SystemRandom().randrange(2**31)

    def state_variables(self):
        """{name: variable} of every weight and optimizer slot a checkpoint holds."""
        return {**{name: m.variable for name, m in self.names.items()},
                **self.optimizer.slot_variables()}

    @property
    def step(self):
        """Optimizer updates done so far (the original's `global_step`)."""
        return int(self.optimizer.iterations.numpy())

    def input_iterator(self, batch_size, seed, is_training=True, records=None):
        """This worker's batches, each example with its own seed.

        `records` are the TFRecords to read (`pretrain_tfrecords` if None).

        Each worker reads its shard of the files into one batch per step, which its
        replicas then split (`_local_batch`). tf.distribute's own distributed iterators
        cannot be checkpointed; this plain iterator can, so a resumed run continues with
        exactly the batches the interrupted one would have seen.
        """
        workers, worker = self.workers, self.worker
        distribute.check_batch_sizes(self.strategy, batch_size=batch_size)
        per_worker = batch_size // workers
        context = (tf.distribute.InputContext(workers, worker, workers) if workers > 1
                   else None)
        dataset = reader.get_dataset(records or self.config.pretrain_tfrecords,
                                     self.config.max_seq_length,
                                     batch_size, is_training=is_training,
                                     input_context=context, seed=seed)

        def add_seeds(i, batch):
            first = (i * workers + worker) * per_worker
            return dict(batch, seeds=helpers.example_seeds(seed, first, per_worker))

        return iter(dataset.enumerate().map(add_seeds))

    def _local_batch(self, batch):
        """This replica's slice of its worker's batch."""
        context = tf.distribute.get_replica_context()
        local = context.num_replicas_in_sync // self.workers
        index = context.replica_id_in_sync_group % local
        size = tf.shape(batch["input_ids"])[0] // local
        return {k: v[index * size:(index + 1) * size] for k, v in batch.items()}

    def replica_step(self, batch):
        """One update on this replica's share of `batch` (a worker's batch with its
        examples' `seeds`): what `make_train_loop` runs per step in each replica, and what
        benchmarks trace to see a step's ops.

        Returns:
            {"loss", "mlm_loss", "disc_loss"}: this replica's shares of the batch's losses.
        """
        batch = self._local_batch(batch)
        seeds = batch.pop("seeds")

        def loss_fn():
            outputs = self.objective(batch, seeds, training=True)
            return outputs["total_loss"], {
                "loss": outputs["total_loss"], "mlm_loss": outputs["mlm"]["loss"],
                "disc_loss": outputs["disc"]["loss"] if "disc" in outputs else tf.constant(0.0)}

        return step.train_step(loss_fn, self.optimizer, self.variables)

    def make_train_loop(self):
        """The `tf.function` `train_loop(iterator, num_steps)` that `train` runs: that many
        steps, returning their mean losses (benchmarks time it as it is)."""
        step_fn = tf.function(self.replica_step, jit_compile=self.config.jit_compile)

        @tf.function
        def train_loop(iterator, num_steps):
            totals = {k: tf.constant(0.0) for k in ("loss", "mlm_loss", "disc_loss")}
            for _ in tf.range(num_steps):
                out = self.strategy.run(step_fn, args=(next(iterator),))
                # Each replica's loss has the global denominator: their sum is the loss.
                totals = {k: totals[k] + self.strategy.reduce("sum", out[k], axis=None)
                          for k in totals}
            return {k: v / tf.cast(num_steps, tf.float32) for k, v in totals.items()}

        return train_loop

    def train(self):
        """Trains until `num_train_steps` updates, resuming from the latest checkpoint.

        The chief holds the model directory's lock meanwhile (`electra_common.lock`).
        Returns:
            The mean losses of the last logging interval.
        """
        tf.io.gfile.makedirs(self.save_dir)
        with self.writing():
            return self._train()

    def writing(self):
        """A context in which this process may write the model directory: the chief holds
        its lock (`electra_common.lock`); other workers write only their own files."""
        if not self.chief:
            return contextlib.nullcontext()
        return lock.hold(self.config.model_dir, self.log)

    @property
    def train_dir(self):
        """This worker's TensorBoard log directory of the training scalars."""
        return os.path.join(self.save_dir, "train")

    @property
    def eval_dir(self):
        """The TensorBoard log directory of the eval metrics (the chief writes it)."""
        return os.path.join(self.config.model_dir, "eval")

    def _train(self):
        config = self.config
        started = time.monotonic()
        if self.chief:
            for directory in (config.model_dir, os.path.join(config.model_dir, "original")):
                files.remove_leftovers(directory)  # what a killed run left half written
        iterator = self.input_iterator(config.train_batch_size, self.run_seed)
        run_seed = tf.Variable(self.run_seed, dtype=tf.int64, trainable=False)
        checkpoint = checkpoints.checkpoint_objects(
            self.models, self.optimizer, run_seed=run_seed, data=iterator,
            dropout_rng=_dropout_states(self.models))
        manager = tf.train.CheckpointManager(
            checkpoint, self.save_dir, max_to_keep=config.keep_checkpoint_max or None,
            checkpoint_name="ckpt")
        finished = False
        if self.latest is not None:
            # Every weight must come from the checkpoint; a converted original checkpoint
            # has no iterator or RNG state, so the rest may be partial.
            checkpoints.read_weights(self.models, self.latest)
            self._read_training_state(checkpoint)
            self._check_finite(f"in {self.latest}, which an older electra-tf saved")
            finished = self.step >= config.num_train_steps
            self.log(f"already finished at step {self.step} of num_train_steps "
                     f"{config.num_train_steps}: nothing to train" if finished
                     else f"Resuming from {self.latest} at step {self.step}")
        if self.chief:  # only now: a run that cannot resume leaves the directory as it was
            checkpoints.write_model_dir_files(config, self.models, config.model_dir)
        last, report = {}, None
        if not finished:
            last, report = self._loop(iterator, checkpoint, manager)
        if self.chief:
            self.write_original_checkpoint()
            if not (finished and files.exists(self.curves_path)):
                self.write_learning_curves()
            for line in self.summary_lines(time.monotonic() - started,
                                           report.seq_per_sec if report else None):
                self.log(line)
        return last

    def _read_training_state(self, checkpoint):
        """Reads `checkpoint` (optimizer, data position, RNGs) from `self.latest`.

        The data position names the record files as the saving run saw them; if they are
        not there (records moved, or a relative --data-dir from another working directory)
        a finished run needs no data, and an unfinished one stops with what to do.
        """
        try:
            checkpoint.read(self.latest).expect_partial()
        except tf.errors.NotFoundError as e:
            if "dataset iterator" not in e.message:
                raise
            checkpoints.checkpoint_objects(self.models, self.optimizer).read(
                self.latest).expect_partial()
            if self.step < self.config.num_train_steps:
                raise ValueError(
                    f"{self.latest}: its data position cannot be restored: "
                    f"{e.message.split(';')[0].split(': ', 1)[-1]} is missing. The data "
                    "iterator's state names the record files as the run that saved it saw "
                    "them: run with the same --data-dir from the same working directory "
                    f"(now {self.config.pretrain_tfrecords})") from None

    def _loop(self, iterator, checkpoint, manager):
        """Trains from `self.step` to `num_train_steps`, saving and evaluating on the way.

        Returns:
            (the mean losses of the last chunk, the `progress.Progress` of the loop).
        """
        config = self.config
        last_saved = self.latest
        writer = tf.summary.create_file_writer(self.train_dir)
        eval_writer = (tf.summary.create_file_writer(self.eval_dir)
                       if self.chief and config.eval_every_steps else None)
        train_loop = self.make_train_loop()
        micro = config.gradient_accumulation_steps
        report = progress.Progress(config.num_train_steps, config.train_batch_size * micro,
                                   start_step=self.step, log=self.log)
        watch = divergence.LossWatch(
            self.log, hint=f"; a lower learning_rate (now {config.learning_rate:g}) may help")
        last = {}
        while self.step < config.num_train_steps:
            # A chunk ends at the next checkpoint step and the next eval step.
            n = min(config.iterations_per_loop, config.num_train_steps - self.step,
                    *(every - self.step % every for every in
                      (config.save_checkpoints_steps, config.eval_every_steps) if every))
            try:
                last = {k: float(v) for k, v in
                        train_loop(iterator, tf.constant(n * micro)).items()}
            except tf.errors.InvalidArgumentError as e:
                if "max_seq_length" not in e.message:
                    raise
                raise ValueError(f"{config.pretrain_tfrecords}: {_first_line(e.message)}") from None
            except tf.errors.DataLossError as e:  # a truncated or corrupted shard
                raise reader.data_loss_error(config.pretrain_tfrecords, e) from None
            if not math.isfinite(last["loss"]):
                raise FloatingPointError(f"loss is {last['loss']} at step {self.step}; "
                                         + _stopped(last_saved))
            report.update(self.step, last)
            watch.update(self.step, last["loss"])
            # The LR the last update used.
            lr = float(self.optimizer.schedule(self.optimizer.iterations))
            summaries.write_scalars(writer, self.step, dict(last, learning_rate=lr))
            done = self.step >= config.num_train_steps
            if config.eval_every_steps and (self.step % config.eval_every_steps == 0 or done):
                with report.paused():  # eval time is not training throughput
                    results = self.eval_metrics()
                self.log(f"eval at step {self.step}: " + _metrics_text(results))
                self.write_eval_summaries(results, eval_writer)
            if self.step % config.save_checkpoints_steps == 0 or done:
                # A checkpoint on disk is always finite, so the rotation never drops the last
                # finite one for a poisoned one.
                with report.paused():  # the first save traces: not training throughput
                    self._check_finite(f"at step {self.step}; " + _stopped(last_saved))
                    last_saved = manager.save(checkpoint_number=self.step)
        writer.close()
        if eval_writer is not None:
            eval_writer.close()
        return last, report

    @property
    def curves_path(self):
        """`<model_dir>/learning_curves.png`."""
        return os.path.join(self.config.model_dir, CURVES_FILE)

    def write_learning_curves(self):
        """Draws the run's TensorBoard scalars into `<model_dir>/learning_curves.png`:
        loss (train and eval), generator accuracy, discriminator AUC (with a
        discriminator) and learning rate against the step.

        Returns:
            The PNG's path.
        """
        train, evals = self.train_dir, self.eval_dir
        panels = [("loss", [(train, "loss", "train"), (evals, "loss", "eval")]),
                  ("generator accuracy", [(evals, "masked_lm_accuracy", "eval")])]
        if self.config.electra_objective:
            panels.append(("discriminator AUC", [(evals, "disc_auc", "eval")]))
        panels.append(("learning rate", [(train, "learning_rate", "train")]))
        return curves.plot_learning_curves(
            self.curves_path, panels, title=f"{self.config.model_name}: step {self.step}")

    def output_paths(self):
        """{what: path} of every output of the run that exists: the latest checkpoint, the
        original-layout copy, config.json, the TensorBoard logs, results, learning curves."""
        config = self.config
        candidates = {
            "checkpoint": tf.train.latest_checkpoint(config.model_dir),
            "original checkpoint": os.path.join(config.model_dir, "original",
                                                f"model.ckpt-{self.step}"),
            "config": os.path.join(config.model_dir, checkpoints.CONFIG_FILE),
            "TensorBoard logs": config.model_dir,
            "results": config.results_json,
            "results (text)": config.results_txt,
            "learning curves": self.curves_path,
        }
        return {what: path for what, path in candidates.items()
                if path and (files.exists(path) or files.exists(path + ".index"))}

    def summary_lines(self, wall_seconds=None, seq_per_sec=None):
        """The end-of-run summary: final training losses and eval metrics (as TensorBoard
        has them), throughput, wall time and `output_paths`.

        Args:
            wall_seconds: the run's wall time, if known.
            seq_per_sec: its steady-state throughput, if known.
        Returns:
            A list of lines.
        """
        config = self.config
        head = f"Finished: step {self.step} of num_train_steps {config.num_train_steps}"
        if wall_seconds is not None:
            head += f" | wall time {progress.hms(wall_seconds)}"
        if seq_per_sec is not None:
            head += f" | {seq_per_sec:.1f} seq/s (steady state)"
        lines = [head]
        train = _at_last_step(curves.read_scalars(self.train_dir), self.step)
        if train:
            losses = {k: v for k, v in train[1].items() if k in LOSSES}
            lines.append(f"  final train losses (step {train[0]}): " + _metrics_text(losses))
        evals = _at_last_step(curves.read_scalars(self.eval_dir), self.step)
        if evals:
            lines.append(f"  final eval (step {evals[0]}): " + _metrics_text(evals[1]))
        paths = self.output_paths()
        width = max(map(len, paths), default=0) + 2
        lines += [f"  {what + ':':<{width}}{path}" for what, path in paths.items()]
        lines.append(f"  TensorBoard: tensorboard --logdir {config.model_dir}")
        return lines

    def _check_finite(self, where):
        bad = divergence.non_finite(self.state_variables())
        if bad:
            raise FloatingPointError(
                f"{len(bad)} weights and optimizer slots hold NaN or infinity ({', '.join(bad[:3])}"
                f"{', ...' if len(bad) > 3 else ''}) {where}")

    def write_original_checkpoint(self):
        """`<model_dir>/original/model.ckpt-<step>`: the original TF1 layout, Adam slots and
        `global_step` included, for any tool that reads original ELECTRA checkpoints."""
        prefix = os.path.join(self.config.model_dir, "original", f"model.ckpt-{self.step}")
        if tf.io.gfile.exists(prefix + ".index"):
            problem = checkpoints.unreadable(prefix)
            if problem is None:
                return prefix  # written by an earlier run that stopped after it
            self.log(f"Writing {prefix} again: {problem}")
            files.remove(prefix + ".index")
        global_step, slots = self.optimizer.original_state()
        return checkpoints.save_original(self.models, prefix, global_step, slots)

    def eval_metrics(self, num_steps=None):
        """The original's eval metrics on `num_steps` (default `num_eval_steps`) batches of
        `eval_tfrecords` (the training records if None), dropout off.

        Every call reads the same batches, from an iterator of its own (seed `run_seed + 1`),
        so an eval during training does not change what training reads or does.
        Returns:
            dict of metric name -> float, and `global_step`.
        """
        config = self.config
        iterator = self.input_iterator(config.eval_batch_size, self.run_seed + 1,
                                       is_training=False, records=self.eval_records)
        if self._eval_step is None:
            def step_fn(batch):
                batch = self._local_batch(batch)
                seeds = batch.pop("seeds")
                return eval_outputs(self.objective, batch, seeds)

            self._eval_step = tf.function(step_fn)
        totals = EvalTotals()
        for _ in range(num_steps or config.num_eval_steps):
            try:
                out = self.strategy.run(self._eval_step, args=(next(iterator),))
            except tf.errors.DataLossError as e:
                raise reader.data_loss_error(self.eval_records, e) from None
            totals.add({k: distribute.local_concat(self.strategy, v).numpy()
                        for k, v in out.items()})
        return {"global_step": self.step, **totals.result()}

    def write_eval_summaries(self, results, writer=None):
        """Writes eval `results` to TensorBoard at their `global_step`, in `eval_dir` (the
        chief only), under the tags of the training scalars where they coincide (`loss`).

        Args:
            results: as `eval_metrics` returns.
            writer: an open `tf.summary.SummaryWriter` of `eval_dir`, or None for one
                opened for this call.
        """
        if self.chief:
            summaries.write_scalars(writer or self.eval_dir, results["global_step"],
                                    {k: v for k, v in results.items() if k != "global_step"})

    def evaluate(self, num_steps=None, write=True):
        """The original's eval metrics on `num_eval_steps` batches, dropout off (see
        `eval_metrics`).

        Returns:
            dict of metric name -> float; if `write`, also written to `results_{txt,json}`
            and to TensorBoard (`<model_dir>/eval`, at the current step).
        """
        results = self.eval_metrics(num_steps)
        if write:
            write_results(self.config, results)
            self.write_eval_summaries(results)
        return results


def _metrics_text(values):
    """`name value` pairs, 4 significant digits (`global_step` left out)."""
    return " ".join(f"{k} {v:.4g}" for k, v in values.items() if k != "global_step")


def _at_last_step(scalars, max_step):
    """(step, {tag: value}) at the last step ≤ `max_step` of `read_scalars`' output, or
    None if it has none."""
    steps = [s for tag_steps, _ in scalars.values() for s in tag_steps if s <= max_step]
    if not steps:
        return None
    step = max(steps)
    return step, {tag: values[tag_steps.index(step)]
                  for tag, (tag_steps, values) in scalars.items() if step in tag_steps}


def _stopped(last_saved):
    """The end of a divergence message: what is kept and how to go on."""
    kept = (f"the last checkpoint, all finite, is {last_saved}" if last_saved
            else "no checkpoint was saved")
    return (f"stopping without saving; {kept}. To go on from it with a lower learning "
            "rate, re-run with that learning_rate and --allow-changed-hparams learning_rate")


def _first_line(message):
    return next((line for line in message.splitlines() if "max_seq_length" in line), message)


def results_text(results):
    """`name = value` lines, sorted by name."""
    return "\n".join(f"{k} = {v}" for k, v in sorted(results.items()))


def write_results(config, results):
    """Writes `results_json` and `results_txt` (the original never writes its results)."""
    results_lib.write_results(config.results_json, config.results_txt, results,
                              results_text(results))


def non_default_hparams_line(config):
    """One line naming the hparams that differ from the defaults, and where all of them are.

    The defaults are those of a config with the same model name and the data directory
    that holds the model directory (`<data_dir>/models/<model_name>`), so the paths derived
    from it count only when set.
    """
    data_dir = os.path.dirname(os.path.dirname(config.model_dir))
    defaults = type(config)(config.model_name, data_dir).to_dict()
    changed = {k: v for k, v in config.to_dict().items() if defaults.get(k) != v}
    return ("hparams not at their defaults: "
            + (", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items()) or "none")
            + f" | all hparams: {os.path.join(config.model_dir, checkpoints.CONFIG_FILE)}")


def train_or_eval(config, strategy=None, log=print, allow_changes=()):
    """The original's `train_or_eval`: exactly one of `do_train` / `do_eval`.

    `allow_changes` as in `Pretrainer`.

    Returns:
        The last training losses, or the eval results.
    """
    if config.do_train == config.do_eval:
        raise ValueError("Exactly one of do_train and do_eval must be true")
    log(non_default_hparams_line(config))
    log(config.precision_line())
    trainer = Pretrainer(config, strategy, log, allow_changes)
    if config.do_train:
        return trainer.train()
    if trainer.latest is None:
        raise FileNotFoundError(f"{config.model_dir}: no checkpoint to evaluate")
    # The optimizer too: its step is the evaluated checkpoint's `global_step`.
    checkpoints.read_weights(trainer.models, trainer.latest)
    checkpoints.checkpoint_objects(trainer.models, trainer.optimizer).read(
        trainer.latest).expect_partial()
    log(f"Evaluating {trainer.latest} (step {trainer.step})")
    with trainer.writing():  # the results files are the model directory's too
        if trainer.chief:
            files.remove_leftovers(os.path.dirname(config.results_json))
        results = trainer.evaluate()
    log(results_text(results))
    return results


