"""Fine-tunes and evaluates ELECTRA on GLUE and chunking, with the original command line.

  python -m finetune.run_finetuning --data-dir D --model-name M --hparams '{"task_names": ["rte"]}'

Data from `D/finetuning_data/<task>/`, vocabulary `D/models/M/vocab.txt` or `D/vocab.txt`,
pretrained encoder from `D/models/M` (one of our model directories, or an original TF1
checkpoint). For each trial: train on "train", score "dev", append the metrics to
`D/models/M/results/<tasks>_results.{json,txt}`, and with `write_test_outputs` write the
test-set predictions as JSON and as ready-to-submit GLUE TSV files (spec §8.4, §8.5, §8.7).
"""

import json
import os
import random
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from electra_tf import cli, optimization, training
from electra_tf import config as config_lib
from finetune import heads
from finetune import model_dir as model_dir_lib
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from pretrain_data.tokenization import FullTokenizer

# GLUE submission file per (task, split) and how a prediction becomes its label.
GLUE_SUBMISSION = {("cola", "test"): "CoLA", ("sst", "test"): "SST-2", ("mrpc", "test"): "MRPC",
                   ("sts", "test"): "STS-B", ("qqp", "test"): "QQP", ("qnli", "test"): "QNLI",
                   ("rte", "test"): "RTE", ("mnli", "test_matched"): "MNLI-m",
                   ("mnli", "test_mismatched"): "MNLI-mm", ("mnli", "diagnostic"): "AX"}


def merge_features(parts, tasks):
    """Concatenates per-task record dicts into records that carry every task's features,
    zeros where a feature does not apply (as the original's records, spec §8.4)."""
    template = heads.dummy_features(tasks, 1, tasks[0].config.max_seq_length)
    return {key: np.concatenate([
        part[key] if key in part else np.zeros((len(part["task_id"]),) + example.shape[1:],
                                               example.dtype) for part in parts])
        for key, example in template.items()}


def pad_to_multiple(features, batch_size, n_tasks):
    """Appends all-zero records with task_id = #tasks (zero loss) to fill the last batch."""
    n = len(features["task_id"])
    extra = -n % batch_size
    if not extra:
        return features
    padded = {k: np.concatenate([v, np.zeros((extra,) + v.shape[1:], v.dtype)])
              for k, v in features.items()}
    padded["task_id"][n:] = n_tasks
    return padded


def featurize(config, tasks, split, is_training=False, write_cache=True):
    """Every task's records of `split`, merged; cached as TFRecords (spec §8.4).

    The records are written to `<preprocessed_data_dir>/<sorted tasks>_<split>.tfrecord` with
    a `.metadata` JSON; with `use_tfrecords_if_existing` a cache whose metadata matches (tasks,
    split, lengths, vocabulary) is read instead of featurising again. Unlike the original, the
    cache is not shuffled: each trial shuffles with its own seed.

    Args:
        write_cache: False on non-chief workers: they read a complete cache but never write it.
    Returns:
        (examples {task: [examples]} or None when read from the cache and not needed,
         records {feature: array [N, ...]}).
    """
    path = os.path.join(config.preprocessed_data_dir,
                        "_".join(sorted(t.name for t in tasks)) + f"_{split}.tfrecord")
    template = heads.dummy_features(tasks, 1, config.max_seq_length)
    metadata = cache_metadata(config, split, template)
    cached = read_metadata(path)
    if config.use_tfrecords_if_existing and cached is not None and all(
            cached.get(k) == v for k, v in metadata.items()):
        print(f"reading {cached['n_examples']} cached {split} records from {path}")
        features = read_records(path, template)
        examples = None if is_training else {t.name: t.get_examples(split) for t in tasks}
        return examples, features
    examples = {t.name: t.get_examples(split) for t in tasks}
    parts = [t.featurize(examples[t.name], is_training) for t in tasks if examples[t.name]]
    if not parts:
        raise ValueError(f"no {split} examples for {', '.join(config.task_names)}")
    features = merge_features(parts, tasks)
    if config.log_examples and is_training:
        print("first featurised example:", {k: v[0].tolist() for k, v in features.items()})
    if write_cache:
        write_records(path, features, dict(metadata, n_examples=len(features["task_id"])))
    return examples, features


def cache_metadata(config, split, template):
    """What a cached record file must match to be reused (`template`: one all-zero record)."""
    return {"tasks": sorted(config.task_names), "split": split,
            "max_seq_length": config.max_seq_length, "vocab_file": config.vocab_file,
            "vocab_bytes": tf.io.gfile.stat(config.vocab_file).length,
            "do_lower_case": config.do_lower_case, "debug": config.debug,
            "features": sorted(template)}


def read_metadata(path):
    if not tf.io.gfile.exists(path + ".metadata") or not tf.io.gfile.exists(path):
        return None
    return json.loads(tf.io.gfile.GFile(path + ".metadata").read())


def write_records(path, features, metadata):
    """Writes records as `tf.train.Example`s (int64/float lists) and then the metadata,
    which marks the file complete; written beside and renamed, never half-overwritten."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    tmp = path + ".incomplete"
    with tf.io.TFRecordWriter(tmp) as writer:
        for i in range(len(features["task_id"])):
            example = {}
            for key, values in features.items():
                flat = np.asarray(values[i]).reshape(-1)
                example[key] = (tf.train.Feature(float_list=tf.train.FloatList(value=flat))
                                if flat.dtype.kind == "f" else
                                tf.train.Feature(int64_list=tf.train.Int64List(value=flat)))
            writer.write(tf.train.Example(features=tf.train.Features(
                feature=example)).SerializeToString())
    tf.io.gfile.rename(tmp, path, overwrite=True)
    with tf.io.gfile.GFile(path + ".metadata", "w") as f:
        json.dump(metadata, f, indent=1)


def read_records(path, template):
    """Reads `write_records` output back into arrays shaped and typed like `template`."""
    spec = {k: tf.io.FixedLenFeature(v.shape[1:], tf.float32 if v.dtype.kind == "f"
                                     else tf.int64) for k, v in template.items()}
    dataset = tf.data.TFRecordDataset(path).batch(1024).map(
        lambda r: tf.io.parse_example(r, spec))
    parts = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([p[k] for p in parts]).astype(template[k].dtype)
            for k in template}


class Progress:
    """A progress bar on a terminal; otherwise a line every 10 steps and at the end, as the
    original's ETAHook (step/total, seq/s, elapsed, ETA, loss)."""

    def __init__(self, total, batch_size, every=10):
        self.total, self.batch_size, self.every = total, batch_size, every
        self.start = time.time()
        self.bar = (keras.utils.Progbar(total, stateful_metrics=["loss"])
                    if sys.stdout.isatty() else None)

    def update(self, step, loss):
        if self.bar is not None:
            self.bar.update(step, [("loss", loss)])
        elif step % self.every == 0 or step == self.total:
            print(training.progress_line(step, self.total, 0, time.time() - self.start,
                                         self.batch_size, {"loss": loss}), flush=True)


def train(config, model, optimizer, features, seed, strategy):
    """Trains as the original: repeat → shuffle(100) → batch, summed loss, one clip.

    Each replica sums the loss over its share of the batch; the optimizer sums gradients
    over replicas before clipping, so the update is that of the whole batch's summed loss.

    Returns:
        The number of steps run.
    """
    num_train_steps = train_steps(config, len(features["task_id"]))
    dataset = (tf.data.Dataset.from_tensor_slices(features).repeat()
               .shuffle(100, seed=seed).batch(config.train_batch_size, drop_remainder=True))
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    step = make_train_step(config, model, optimizer, strategy)
    progress = Progress(num_train_steps, config.train_batch_size)
    for i in range(1, num_train_steps + 1):
        loss = float(step(iterator))
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at step {i}; stopping without saving")
        progress.update(i, loss)
    return num_train_steps


def make_train_step(config, model, optimizer, strategy):
    """A compiled update: `step(distributed_iterator)` → the batch's summed loss.

    Each replica sums the loss over its share of the batch (scaled for mixed_float16); the
    optimizer sums gradients over replicas before its global-norm clip.
    """
    variables = model.trainable_variables

    @tf.function(jit_compile=config.jit_compile)
    def replica_step(batch):
        with tf.GradientTape() as tape:
            loss = model(batch, training=True)["loss"]
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    @tf.function
    def step(iterator):
        return strategy.reduce("sum", strategy.run(replica_step, args=(next(iterator),)),
                               axis=None)

    return step


def train_steps(config, n_records):
    """`int(n // train_batch_size * num_train_epochs)` (spec §8.4); 0 steps is an error."""
    steps = int(n_records // config.train_batch_size * config.num_train_epochs)
    if steps < 1:
        raise ValueError(f"{n_records} training records make 0 steps at batch size "
                         f"{config.train_batch_size}")
    return steps


def build_optimizer(config, model, num_train_steps):
    """The original optimizer with layer-wise LR decay; loss scaling for mixed_float16."""
    decay = config.layerwise_lr_decay
    optimizer = optimization.create_optimizer(
        config.learning_rate, num_train_steps, config.weight_decay_rate,
        warmup_proportion=config.warmup_proportion,
        layerwise_lr_decay_power=decay if decay > 0 else -1.0,
        n_transformer_layers=config.bert_config().num_hidden_layers,
        variables=model.original_variables())
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    optimizer.build(model.trainable_variables)
    return optimizer


def predict(model, features, batch_size, strategy):
    """Runs the model in eval mode on every record, in order.

    Returns:
        {task: {output: array [N, ...]}}.
    """
    if training.worker_info(strategy)[0] > 1:
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
        return tf.nest.map_structure(
            lambda v: tf.concat(strategy.experimental_local_results(v), 0), out)

    outputs = {}
    for batch in distributed:
        for task, values in step(batch).items():
            for key, value in values.items():
                outputs.setdefault(task, {}).setdefault(key, []).append(value.numpy())
    return {t: {k: np.concatenate(v)[:n] for k, v in out.items()}
            for t, out in outputs.items()}


def task_rows(outputs, features, task_id):
    """One task's outputs on its own records (other tasks' and padding records dropped)."""
    rows = features["task_id"] == task_id
    return {k: v[rows] for k, v in outputs.items()}


def write_test_outputs(config, model, tasks, trial, strategy):
    """Test-set predictions (spec §8.7). GLUE: JSON {eid: logits or score} and GLUE
    submission TSVs. SQuAD 2.0: JSON {id: answer text}, "" where the null odds exceed
    `qa_na_threshold`, paired with the test examples (the original paired them with dev)."""
    submission_dir = os.path.join(config.test_predictions_dir, f"glue_{trial}")
    for task_id, task in enumerate(tasks):
        if task.task_type == "tagging" or (task.task_type == "qa" and task.name != "squad"):
            print(f"no test outputs for {task.name} (GLUE and SQuAD 2.0 only, as the original)")
            continue
        for split in task.get_test_splits():
            examples = task.get_examples(split)
            features = merge_features([task.featurize(examples, False)], tasks)
            features["task_id"][:] = task_id
            out = predict(model, features, config.predict_batch_size, strategy)[task.name]
            path = config.test_predictions(task.name, split, trial)
            tf.io.gfile.makedirs(os.path.dirname(path))
            if task.task_type == "qa":
                answers, null_odds = task.predict_answers(examples, out)
                answers = {q: "" if null_odds[q] > config.qa_na_threshold else text
                           for q, text in answers.items()}
                with tf.io.gfile.GFile(path, "w") as f:
                    json.dump(answers, f, indent=1)
                continue
            raw = out["logits"] if task.task_type == "classification" else out["predictions"]
            with tf.io.gfile.GFile(path, "w") as f:
                json.dump({int(e): np.asarray(r).tolist() for e, r in zip(out["eid"], raw)}, f)
            if (task.name, split) in GLUE_SUBMISSION:
                write_glue_submission(os.path.join(
                    submission_dir, GLUE_SUBMISSION[(task.name, split)] + ".tsv"), task,
                    out["eid"], raw)


def write_glue_submission(path, task, eids, raw):
    """A GLUE server TSV: `index<TAB>prediction`, label names, STS ×5 clipped to [0, 5]."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("index\tprediction\n")
        for eid, value in zip(eids, raw):
            label = (task.label_list[int(np.argmax(value))]
                     if task.task_type == "classification"
                     else f"{min(5.0, max(0.0, 5.0 * float(value))):.3f}")
            f.write(f"{int(eid)}\t{label}\n")


def summarize(all_results):
    """Mean, median and std (population, `np.std`) of each metric across trials.

    Args:
        all_results: the per-trial results [{task: {metric: value}}].
    Returns:
        {task: {metric: {"mean": m, "median": m, "std": s}}}.
    """
    summary = {}
    for task in all_results[0] if all_results else {}:
        for metric in all_results[0][task]:
            values = np.asarray([trial[task][metric] for trial in all_results], np.float64)
            summary.setdefault(task, {})[metric] = {
                "mean": float(values.mean()), "median": float(np.median(values)),
                "std": float(values.std())}
    return summary


def write_results(config, all_results):
    """Rewrites the results JSON and TXT with every trial so far and their summary.

    JSON: {"trials": [{task: {metric: value}}], "summary": `summarize(...)`}. TXT: one line
    per task and trial (`task: k: v - k: v`, 2 decimals), then one summary line per task,
    `task (N trials): k: mean M median M std S - ...`.
    """
    summary = summarize(all_results)
    tf.io.gfile.makedirs(os.path.dirname(config.results_json))
    with tf.io.gfile.GFile(config.results_json, "w") as f:
        json.dump({"trials": all_results, "summary": summary}, f, indent=1)
    with tf.io.gfile.GFile(config.results_txt, "w") as f:
        for trial_results in all_results:
            for task, values in trial_results.items():
                f.write(f"{task}: " + " - ".join(f"{k}: {v:.2f}" for k, v in values.items())
                        + "\n")
        for task, values in summary.items():
            f.write(f"{task} ({len(all_results)} trials): " + " - ".join(
                f"{k}: mean {v['mean']:.2f} median {v['median']:.2f} std {v['std']:.2f}"
                for k, v in values.items()) + "\n")


def run_finetuning(config, strategy=None):
    """Runs `num_trials` train+eval trials as the original (spec §8.5).

    Args:
        config: a `FinetuningConfig`.
        strategy: a `tf.distribute.Strategy`; by default the one `config.strategy` names.
    Returns:
        The list of per-trial results {task: {metric: value}}.
    """
    if config.precision != "float32":
        keras.mixed_precision.set_global_policy(config.precision)
    strategy = strategy or training.get_strategy(config)
    for name in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
        if getattr(config, name) % strategy.num_replicas_in_sync:
            raise ValueError(f"{name} {getattr(config, name)} is not a multiple of the "
                             f"{strategy.num_replicas_in_sync} replicas")
    # Under MultiWorkerMirroredStrategy every worker runs this; only the chief writes files.
    chief = training.worker_info(strategy)[1] == 0
    print(config)
    tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    all_results, trial = [], 1
    while config.num_trials < 0 or trial <= config.num_trials:
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
        keras.utils.set_random_seed(seed + trial)
        model_dir = f"{config.model_dir}_{trial}"
        with strategy.scope():
            model = load_or_train(config, tasks, model_dir, seed + trial, strategy, chief)
        if config.do_eval:
            examples, features = featurize(config, tasks, "dev", write_cache=chief)
            outputs = predict(model, features, config.eval_batch_size, strategy)
            results = {t.name: t.score(examples[t.name], task_rows(outputs[t.name], features, i))
                       for i, t in enumerate(tasks)}
            for task, values in results.items():
                print(f"{task}: " + " - ".join(f"{k}: {v:.2f}" for k, v in values.items()))
            all_results.append(results)
            if chief:
                write_results(config, all_results)
        if chief and config.write_test_outputs and trial <= config.n_writes_test:
            write_test_outputs(config, model, tasks, trial, strategy)
        if chief and not config.keep_all_models and trial > 1 and config.do_train:
            previous = f"{config.model_dir}_{trial - 1}"
            print(f"keep_all_models is false: deleting {previous}")
            model_dir_lib.remove(previous)
        trial += 1
    if len(all_results) > 1:
        for task, values in summarize(all_results).items():
            print(f"{task} ({len(all_results)} trials): " + " - ".join(
                f"{k}: {v['mean']:.2f} ± {v['std']:.2f}" for k, v in values.items()))
    return all_results


def load_or_train(config, tasks, model_dir, seed, strategy, chief=True):
    """Trains a model into `model_dir` (do_train; only the chief writes it), or reads the one
    there, or else the original fine-tuned checkpoint `init_checkpoint` (the README's
    do_train=false recipe)."""
    if config.do_train:
        if chief:
            model_dir_lib.check_replaceable(model_dir)  # fail before training, not after
        print(f"trial {model_dir.rsplit('_', 1)[-1]}: seed {seed}, training into {model_dir}")
        model = heads.build_finetuning_model(config, tasks, config.init_checkpoint)
        _, features = featurize(config, tasks, "train", is_training=True, write_cache=chief)
        order = np.random.RandomState(seed).permutation(len(features["task_id"]))
        features = pad_to_multiple({k: v[order] for k, v in features.items()},
                                   config.train_batch_size, len(tasks))
        # Padding records count towards the steps, as in the original (spec §8.4).
        optimizer = build_optimizer(config, model,
                                    train_steps(config, len(features["task_id"])))
        train(config, model, optimizer, features, seed, strategy)
        if chief:
            model_dir_lib.save(model_dir, config, model, tasks, optimizer)
        return model
    if tf.io.gfile.exists(os.path.join(model_dir, model_dir_lib.WEIGHTS_FILE)):
        model = heads.build_finetuning_model(config, tasks)
        model.load_weights(os.path.join(model_dir, model_dir_lib.WEIGHTS_FILE))
        return model
    return heads.load_finetuned_original(config.init_checkpoint, config, tasks)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = FinetuningConfig(flags.FLAGS["model-name"].value, flags.FLAGS["data-dir"].value,
                              **config_lib.parse_hparams(flags.FLAGS.hparams))
    run_finetuning(config)


def define_flags():
    """The original's flags; defined on demand so that importing this module is harmless."""
    flags.DEFINE_string("data-dir", None, "Location of data files (model weights, etc).")
    flags.DEFINE_string("model-name", None, "The name of the pretrained model.")
    flags.DEFINE_string("hparams", "{}", "JSON dict of model hyperparameters, or a .json path.")
    flags.mark_flags_as_required(["data-dir", "model-name"])


if __name__ == "__main__":
    define_flags()
    cli.run(main)
