"""A fine-tuning run: `num_trials` trials of train (or load) → evaluate → write, as the
original `run_finetuning.py`.

Under `MultiWorkerMirroredStrategy` every worker runs this; only the chief writes files,
holding the lock of the models directory (`dirname(model_dir)`: one fine-tuning run at a
time writes there) and first deleting what a killed run left half written.

A re-run does not overwrite: a trial whose directory holds a complete model (trained with
the same hparams) is loaded and evaluated again, saying so; the others (missing, or half
written by a killed run) are trained. So a killed run, run again, ends with the outputs of
an uninterrupted run, and a larger `num_trials` trains only the trials not there yet.
"""

import json
import os
import random
import time

import keras
import numpy as np
import tensorflow as tf

from electra_common import files, lock
from electra_tf.training import distribute
from finetune import model_dir as model_dir_lib
from finetune import tasks as tasks_lib
from finetune import outputs, records, trainer, weights
from finetune.model import build_finetuning_model
from pretrain_data import tokenization
from pretrain_data.tokenization import FullTokenizer


def run_finetuning(config, strategy=None):
    """Runs `num_trials` train+eval trials.

    Each trial trains into `<model_dir>_<trial>` (or reads the model there), scores "dev",
    rewrites the results files with every trial so far, and with `write_test_outputs`
    writes the test-set predictions.

    Args:
        config: a `FinetuningConfig`.
        strategy: a `tf.distribute.Strategy`; by default the one `config.strategy` names.
    Returns:
        The list of per-trial results {task: {metric: value}}.
    Raises:
        electra_common.lock.DirectoryLocked: another run writes `dirname(model_dir)`.
    """
    with distribute.precision(config.precision):  # the heads follow the global policy
        return _run_trials(config, strategy)


def _run_trials(config, strategy):
    strategy = strategy or distribute.get_strategy(config)
    distribute.check_batch_sizes(strategy, train_batch_size=config.train_batch_size,
                                 eval_batch_size=config.eval_batch_size,
                                 predict_batch_size=config.predict_batch_size)
    chief = distribute.worker_info(strategy)[1] == 0
    print("hparams other than the defaults (all of them: the results JSON):",
          json.dumps(config.non_defaults()))
    print(config.architecture_line())
    print(config.precision_line())
    tokenization.check_vocab(config.vocab_file, config.vocab_size)
    tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    if not chief:  # the chief alone writes, and holds the lock
        return _trials(config, tasks, strategy, chief)
    with lock.hold(os.path.dirname(config.model_dir)):
        remove_leftovers(config, tasks)
        return _trials(config, tasks, strategy, chief)


def remove_leftovers(config, tasks):
    """Deletes what a killed run left half written (`.tmp-*` entries, see
    `electra_common.files`): everything in the models directory, whose lock we hold, and
    elsewhere only the temporaries of this run's own outputs (other runs may write
    beside them: pretraining's results, other task sets' records)."""
    files.remove_leftovers(os.path.dirname(config.model_dir))
    own = [records.cache_path(config, split) for split in ("train", "dev")]
    own += [config.results_json, config.results_txt]
    own += [config.qa_eval_file(t.name).rsplit("_", 1)[0] + "_" for t in tasks
            if t.task_type == "qa"]
    own += [os.path.join(config.test_predictions_dir, t.name + "_") for t in tasks]
    glue_dirs = (tf.io.gfile.glob(os.path.join(config.test_predictions_dir, "glue_*"))
                 if files.exists(config.test_predictions_dir) else [])
    own += [os.path.join(d, outputs.GLUE_SUBMISSION[key] + ".tsv") for d in glue_dirs
            for key in outputs.GLUE_SUBMISSION if key[0] in config.task_names]
    for prefix in own:
        directory, name = os.path.split(prefix)
        files.remove_leftovers(directory, [name])


def _trials(config, tasks, strategy, chief):
    all_results, done, trial = [], [], 1
    while config.num_trials < 0 or trial <= config.num_trials:
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
        keras.utils.set_random_seed(seed + trial)
        trial_dir = f"{config.model_dir}_{trial}"
        with strategy.scope():
            model = load_or_train(config, tasks, trial_dir, seed + trial, strategy, chief)
        done.append(trial_record(config, trial, trial_dir))
        if config.do_eval:
            all_results.append(evaluate(config, model, tasks, strategy, chief))
            if chief:
                outputs.write_results(config, all_results, done)
                if model_dir_lib.is_complete(trial_dir):
                    outputs.write_dev_summaries(trial_dir, done[-1]["global_step"],
                                                all_results[-1])
        if chief and config.write_test_outputs and trial <= config.n_writes_test:
            outputs.write_test_outputs(config, model, tasks, trial, strategy)
        if chief and not config.keep_all_models and trial > 1 and config.do_train:
            previous = f"{config.model_dir}_{trial - 1}"
            print(f"keep_all_models is false: deleting {previous}")
            model_dir_lib.remove(previous)
        trial += 1
    if len(all_results) > 1:
        print("\n".join(outputs.summary_lines(all_results)))
    if chief:
        print("\n".join(outputs.run_summary(config, done, bool(all_results))))
    return all_results


def evaluate(config, model, tasks, strategy, chief=True):
    """Scores every task on "dev" and prints the metrics; {task: {metric: value}}."""
    examples, features = records.featurize(config, tasks, "dev", write_cache=chief)
    predictions = trainer.predict(model, features, config.eval_batch_size, strategy)
    results = {t.name: t.score(examples[t.name],
                               records.task_rows(predictions[t.name], features, i))
               for i, t in enumerate(tasks)}
    for task, values in results.items():
        print(outputs.result_line(task, values))
    return results


def load_or_train(config, tasks, trial_dir, seed, strategy, chief=True):
    """A trial's model: trained into `trial_dir` (do_train; only the chief writes it), or
    read from there when it holds a complete model (a re-run evaluates what an earlier run
    trained, and says so), or else (do_train false) read from the original fine-tuned
    checkpoint `init_checkpoint` (the do_train=false recipe of docs/finetuning.md).

    Returns:
        The model.
    Raises:
        ValueError: `trial_dir` holds a model trained with other hparams (do_train).
    """
    trial = trial_dir.rsplit("_", 1)[-1]
    if model_dir_lib.is_complete(trial_dir):
        record = model_dir_lib.read_training(trial_dir)
        if config.do_train:
            check_unchanged(config, trial_dir)
            print(f"trial {trial}: {trial_dir} was trained at {record['finished_at']} "
                  f"(step {record['global_step']}); evaluating it. Delete it to train it "
                  "again, or raise num_trials or set another model_dir to train new ones")
        model = build_finetuning_model(config, tasks)
        model.load_weights(os.path.join(trial_dir, model_dir_lib.WEIGHTS_FILE))
        return model
    if not config.do_train:
        return weights.load_finetuned_original(config.init_checkpoint,
                                               build_finetuning_model(config, tasks))
    if chief:
        # Fail before training, not after; what a killed run left there (its TensorBoard
        # scalars) is its own and goes.
        model_dir_lib.remove(trial_dir)
    print(f"trial {trial}: seed {seed}, training into {trial_dir}")
    model = build_finetuning_model(config, tasks, config.init_checkpoint)
    _, features = records.featurize(config, tasks, "train", is_training=True,
                                    write_cache=chief)
    order = np.random.RandomState(seed).permutation(len(features["task_id"]))
    features = records.pad_to_multiple({k: v[order] for k, v in features.items()},
                                       config.train_batch_size, len(tasks))
    # Padding records count towards the steps, as in the original.
    optimizer = trainer.build_optimizer(
        config, model, trainer.train_steps(config, len(features["task_id"])))
    start = time.monotonic()
    steps = trainer.train(config, model, optimizer, features, seed, strategy, logdir=(
        os.path.join(trial_dir, model_dir_lib.TRAIN_LOGDIR) if chief else None))
    record = model_dir_lib.training_record(steps, time.monotonic() - start)
    if chief:
        model_dir_lib.save(trial_dir, config, model, tasks, optimizer, record)
    return model


def trial_record(config, trial, trial_dir):
    """What the results say of a trial: {"trial", "model_dir", "global_step",
    "train_seconds", "finished_at"} (`model_dir.read_training`); for a model read from an
    original fine-tuned checkpoint, that checkpoint and None."""
    if model_dir_lib.is_complete(trial_dir):
        return {"trial": trial, "model_dir": trial_dir, **model_dir_lib.read_training(trial_dir)}
    return {"trial": trial, "model_dir": config.init_checkpoint, "global_step": None,
            "train_seconds": None, "finished_at": None}


def check_unchanged(config, trial_dir):
    """Raises `ValueError` naming each hparam (outside `FinetuningConfig.RESUMABLE`) that
    differs from the one `trial_dir` was trained with."""
    _, fixed = config.changes_since(os.path.join(trial_dir, model_dir_lib.CONFIG_FILE))
    if fixed:
        raise ValueError(f"{trial_dir} was trained with other hparams (" + "; ".join(
            f"{k} {then!r} then, {now!r} now" for k, (then, now) in fixed.items())
            + "): delete it, or set another model_dir, to train with these")
