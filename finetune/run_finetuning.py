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

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from electra_tf import cli, optimization
from electra_tf import config as config_lib
from finetune import heads, metrics
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from pretrain_data.tokenization import FullTokenizer

WEIGHTS_FILE = "model.weights.h5"

# GLUE submission file per (task, split) and how a prediction becomes its label.
GLUE_SUBMISSION = {("cola", "test"): "CoLA", ("sst", "test"): "SST-2", ("mrpc", "test"): "MRPC",
                   ("sts", "test"): "STS-B", ("qqp", "test"): "QQP", ("qnli", "test"): "QNLI",
                   ("rte", "test"): "RTE", ("mnli", "test_matched"): "MNLI-m",
                   ("mnli", "test_mismatched"): "MNLI-mm", ("mnli", "diagnostic"): "AX"}


def merge_features(parts, tasks, seq_length):
    """Concatenates per-task feature dicts into records that carry every task's features,
    zeros where a feature does not apply (as the original's records, spec §8.4)."""
    template = heads.dummy_features(tasks, 1, seq_length)
    template.update({f"{t.name}_eid": np.zeros(1, np.int32) for t in tasks})
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


def featurize(config, tasks, split, shuffle_seed=None):
    """Examples of `split` for every task, featurised and merged; also the examples."""
    examples = {t.name: t.get_examples(split) for t in tasks}
    parts = [t.featurize(examples[t.name]) for t in tasks if examples[t.name]]
    features = merge_features(parts, tasks, config.max_seq_length)
    if config.log_examples and split == "train":
        print("first featurised example:", {k: v[0].tolist() for k, v in features.items()})
    if shuffle_seed is not None:
        order = np.random.RandomState(shuffle_seed).permutation(len(features["task_id"]))
        features = {k: v[order] for k, v in features.items()}
    return examples, features


def train(config, model, features, seed):
    """Trains as the original: repeat → shuffle(100) → batch, summed loss, one clip.

    Returns:
        The number of steps run.
    """
    n = len(features["task_id"])
    num_train_steps = int(n // config.train_batch_size * config.num_train_epochs)
    if num_train_steps < 1:
        raise ValueError(f"{n} training examples make 0 steps at batch size "
                         f"{config.train_batch_size}")
    decay = config.layerwise_lr_decay
    optimizer = optimization.create_optimizer(
        config.learning_rate, num_train_steps, config.weight_decay_rate,
        warmup_proportion=config.warmup_proportion,
        layerwise_lr_decay_power=decay if decay > 0 else -1.0,
        n_transformer_layers=config.bert_config().num_hidden_layers,
        variables=model.original_variables())
    variables = model.trainable_variables
    dataset = (tf.data.Dataset.from_tensor_slices(features).repeat()
               .shuffle(100, seed=seed).batch(config.train_batch_size, drop_remainder=True))

    @tf.function(jit_compile=config.jit_compile)
    def step(batch):
        with tf.GradientTape() as tape:
            loss = model(batch, training=True)["loss"]
        optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    for i, batch in enumerate(dataset.take(num_train_steps), 1):
        loss = float(step(batch))
        if not np.isfinite(loss):
            raise FloatingPointError(f"loss is {loss} at step {i}")
        if i % config.iterations_per_loop == 0 or i == num_train_steps:
            print(f"step {i}/{num_train_steps}  loss {loss:.4f}", flush=True)
    return num_train_steps


def predict(model, features, batch_size):
    """Runs the model in eval mode; returns {task: {output: array}} over all records."""
    outputs = {}
    for start in range(0, len(features["task_id"]), batch_size):
        batch = {k: v[start:start + batch_size] for k, v in features.items()}
        result = model(batch, training=False)
        for task in model.tasks:
            for key, value in result[task.name].items():
                outputs.setdefault(task.name, {}).setdefault(key, []).append(np.asarray(value))
    return {t: {k: np.concatenate(v) for k, v in out.items()} for t, out in outputs.items()}


def score(task, task_id, features, outputs):
    """The original's metrics for one task on its records (padding skipped), plus F1 for
    MRPC and QQP as GLUE reports it."""
    rows = features["task_id"] == task_id
    out = {k: v[rows] for k, v in outputs.items()}
    if task.task_type == "classification":
        labels, predictions = out["label_ids"], out["predictions"]
        results = ({"mcc": metrics.mcc(labels, predictions)} if task.name == "cola"
                   else {"accuracy": metrics.accuracy(labels, predictions)})
        if task.name in ("mrpc", "qqp"):
            results["f1"] = metrics.f1(labels, predictions)
        results["loss"] = float(np.mean(out["loss"]))
    elif task.task_type == "regression":
        targets, predictions = out["targets"], out["predictions"]
        results = {"pearson": metrics.pearson(targets, predictions),
                   "spearman": metrics.spearman(targets, predictions),
                   "mse": metrics.mse(targets, predictions),
                   "loss": float(np.mean(out["loss"]))}
    else:
        inverse = {i: tag for tag, i in task.label_mapping.items()}
        gold, predicted = [], []
        for labels, preds, mask in zip(out["labels"], out["predictions"], out["labels_mask"]):
            n = int(round(mask.sum()))  # words cut by truncation are not scored
            gold.append([inverse[i] for i in labels[:n]])
            predicted.append([inverse[i] for i in preds[:n]])
        results = metrics.chunk_scores(gold, predicted)
        results["loss"] = float(out["loss"].sum() / max(1.0, out["labels_mask"].sum()))
    return results


def write_test_outputs(config, model, tasks, trial):
    """GLUE test predictions: JSON {eid: logits or score} and GLUE submission TSVs."""
    submission_dir = os.path.join(config.test_predictions_dir, f"glue_{trial}")
    tf.io.gfile.makedirs(submission_dir)
    for task_id, task in enumerate(tasks):
        if task.task_type == "tagging":
            print(f"no test outputs for {task.name} (GLUE tasks only)")
            continue
        for split in task.get_test_splits():
            examples = task.get_examples(split)
            features = merge_features([task.featurize(examples)], tasks, config.max_seq_length)
            features["task_id"][:] = task_id
            out = predict(model, features, config.predict_batch_size)[task.name]
            raw = out["logits"] if task.task_type == "classification" else out["predictions"]
            with tf.io.gfile.GFile(config.test_predictions(task.name, split, trial), "w") as f:
                json.dump({int(e): np.asarray(r).tolist() for e, r in zip(out["eid"], raw)}, f)
            name = GLUE_SUBMISSION.get((task.name, split))
            if name:
                with tf.io.gfile.GFile(os.path.join(submission_dir, name + ".tsv"), "w") as f:
                    f.write("index\tprediction\n")
                    for eid, value in zip(out["eid"], raw):
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


def run_finetuning(config):
    """Runs `num_trials` train+eval trials as the original (spec §8.5).

    Args:
        config: a `FinetuningConfig`.
    Returns:
        The list of per-trial results {task: {metric: value}}.
    """
    if config.strategy != "default":
        raise ValueError(f"strategy {config.strategy!r} is not supported by fine-tuning yet; "
                         "use \"default\"")
    if config.precision != "float32":
        keras.mixed_precision.set_global_policy(config.precision)
    print(config)
    tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    all_results, trial = [], 1
    while config.num_trials < 0 or trial <= config.num_trials:
        seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2 ** 31)
        keras.utils.set_random_seed(seed + trial)
        model_dir = f"{config.model_dir}_{trial}"
        weights = os.path.join(model_dir, WEIGHTS_FILE)
        if config.do_train:
            print(f"trial {trial}: seed {seed}, training into {model_dir}")
            model = heads.build_finetuning_model(config, tasks, config.init_checkpoint)
            _, train_features = featurize(config, tasks, "train", shuffle_seed=seed + trial)
            train_features = pad_to_multiple(train_features, config.train_batch_size, len(tasks))
            train(config, model, train_features, seed + trial)
            tf.io.gfile.makedirs(model_dir)
            model.save_weights(weights)
        elif tf.io.gfile.exists(weights):
            model = heads.build_finetuning_model(config, tasks)
            model.load_weights(weights)
        else:  # an original fine-tuned checkpoint, as the README's do_train=false recipe
            model = heads.load_finetuned_original(config.init_checkpoint, config, tasks)
        if config.do_eval:
            _, features = featurize(config, tasks, "dev")
            outputs = predict(model, features, config.eval_batch_size)
            results = {t.name: score(t, i, features, outputs[t.name])
                       for i, t in enumerate(tasks)}
            for task, values in results.items():
                print(f"{task}: " + " - ".join(f"{k}: {v:.2f}" for k, v in values.items()))
            all_results.append(results)
            write_results(config, all_results)
        if config.write_test_outputs and trial <= config.n_writes_test:
            write_test_outputs(config, model, tasks, trial)
        if not config.keep_all_models and trial > 1:
            previous = os.path.join(f"{config.model_dir}_{trial - 1}", WEIGHTS_FILE)
            if tf.io.gfile.exists(previous):  # only what we wrote
                tf.io.gfile.remove(previous)
        trial += 1
    if len(all_results) > 1:
        for task, values in summarize(all_results).items():
            print(f"{task} ({len(all_results)} trials): " + " - ".join(
                f"{k}: {v['mean']:.2f} ± {v['std']:.2f}" for k, v in values.items()))
    return all_results


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
