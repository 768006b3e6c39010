"""What a fine-tuning run writes besides its models: results, and test-set predictions.

- Results: every trial's dev metrics, step and time, their summary and the run's hparams,
  as JSON and text (`electra_tf.training.results.write_results`), rewritten after each
  trial.
- Each trial's dev metrics as TensorBoard scalars in `<trial dir>/eval`, and its learning
  curves as `<trial dir>/learning_curves.png`.
- Test-set predictions (GLUE and SQuAD 2.0 only, as the original): JSON per task and
  split, and for GLUE the TSV files the GLUE server takes.
"""

import os

import numpy as np

from electra_common import files
from electra_tf.training import curves, summaries
from electra_tf.training import results as results_lib
from finetune import model_dir as model_dir_lib
from finetune.records import merge_features
from finetune.trainer import predict

# GLUE submission file per (task, split).
GLUE_SUBMISSION = {("cola", "test"): "CoLA", ("sst", "test"): "SST-2", ("mrpc", "test"): "MRPC",
                   ("sts", "test"): "STS-B", ("qqp", "test"): "QQP", ("qnli", "test"): "QNLI",
                   ("rte", "test"): "RTE", ("mnli", "test_matched"): "MNLI-m",
                   ("mnli", "test_mismatched"): "MNLI-mm", ("mnli", "diagnostic"): "AX"}


def result_line(task, values):
    """`task: k: v - k: v`, values to 2 decimals."""
    return f"{task}: " + " - ".join(f"{k}: {v:.2f}" for k, v in values.items())


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


def write_results(config, all_results, trials=None):
    """Rewrites the results JSON and TXT with every trial so far and their summary.

    JSON: {"hparams": `config.to_dict()`, "trials": [{"trial": t, "model_dir": d,
    "global_step": N, "train_seconds": s, "finished_at": UTC ISO time, "metrics": {task:
    {metric: value}}}], "summary": `summarize(...)`}. TXT: per trial a line `trial t: d
    (step N, trained in s s, finished at T)` and one line per task (`result_line`), then one
    summary line per task, `task (N trials): k: mean M median M std S - ...`.

    Args:
        config: the run's `FinetuningConfig`.
        all_results: the per-trial results [{task: {metric: value}}].
        trials: per trial {"trial", "model_dir", "global_step", "train_seconds",
            "finished_at"} (as `trials.load_or_train` records them); None: numbers only.
    """
    trials = trials or [{"trial": t} for t in range(1, len(all_results) + 1)]
    entries = [dict(trial, metrics=results) for trial, results in zip(trials, all_results)]
    lines = []
    for entry in entries:
        lines += [trial_line(entry)] + [result_line(task, values)
                                        for task, values in entry["metrics"].items()]
    results_lib.write_results(config.results_json, config.results_txt,
                              {"hparams": config.to_dict(), "trials": entries,
                               "summary": summarize(all_results)},
                              "\n".join(lines + summary_lines(all_results)))


def trial_line(trial):
    """`trial t: <model dir> (step N, trained in S s, finished at T)`, what is known."""
    known = [f"step {trial['global_step']}" if trial.get("global_step") is not None else "",
             f"trained in {trial['train_seconds']:.1f} s"
             if trial.get("train_seconds") is not None else "",
             f"finished at {trial['finished_at']}" if trial.get("finished_at") else ""]
    known = ", ".join(k for k in known if k)
    return (f"trial {trial['trial']}" + (f": {trial['model_dir']}" if trial.get("model_dir")
                                         else "") + (f" ({known})" if known else ""))


def summary_lines(all_results):
    """One line per task: `task (N trials): k: mean M median M std S - ...`."""
    return [f"{task} ({len(all_results)} trials): " + " - ".join(
        f"{k}: mean {v['mean']:.2f} median {v['median']:.2f} std {v['std']:.2f}"
        for k, v in values.items()) for task, values in summarize(all_results).items()]


def write_test_outputs(config, model, tasks, trial, strategy):
    """Test-set predictions. GLUE: JSON {eid: logits or score} and GLUE submission TSVs.
    SQuAD 2.0: JSON {id: answer text}, "" where the null odds exceed `qa_na_threshold`,
    paired with the test examples (the original paired them with dev)."""
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
            if task.task_type == "qa":
                answers, null_odds = task.predict_answers(examples, out)
                files.write_json(path, {q: "" if null_odds[q] > config.qa_na_threshold
                                        else text for q, text in answers.items()})
                continue
            raw = out["logits"] if task.task_type == "classification" else out["predictions"]
            files.write_json(path, {int(e): np.asarray(r).tolist()
                                    for e, r in zip(out["eid"], raw)}, indent=None)
            if (task.name, split) in GLUE_SUBMISSION:
                write_glue_submission(os.path.join(
                    submission_dir, GLUE_SUBMISSION[(task.name, split)] + ".tsv"), task,
                    out["eid"], raw)


def write_glue_submission(path, task, eids, raw):
    """A GLUE server TSV: `index<TAB>prediction`, label names, STS ×5 clipped to [0, 5]."""
    lines = ["index\tprediction"]
    for eid, value in zip(eids, raw):
        label = (task.label_list[int(np.argmax(value))]
                 if task.task_type == "classification"
                 else f"{min(5.0, max(0.0, 5.0 * float(value))):.3f}")
        lines.append(f"{int(eid)}\t{label}")
    files.write_text(path, "\n".join(lines) + "\n")


def dev_tags(results):
    """{TensorBoard tag: value} of one evaluation's numeric metrics: `metric` for one task
    (so the dev `loss` overlays the train `loss`), `task/metric` for several."""
    return {(metric if len(results) == 1 else f"{task}/{metric}"): float(value)
            for task, values in results.items() for metric, value in values.items()
            if isinstance(value, (int, float, np.number)) and not isinstance(value, bool)}


def write_dev_summaries(trial_dir, step, results):
    """A trial's dev metrics as TensorBoard scalars in `<trial_dir>/eval` at `step` (an
    earlier evaluation's are replaced), and `<trial_dir>/learning_curves.png`: the train and
    dev loss (mean per example), each task's other dev metrics, the learning rate.

    Args:
        trial_dir: a trial's model directory; training wrote `train/` there.
        step: the trial's last training step.
        results: {task: {metric: value}}, as `trials.evaluate` returns them.
    Returns:
        The PNG's path.
    """
    train_dir = os.path.join(trial_dir, model_dir_lib.TRAIN_LOGDIR)
    eval_dir = os.path.join(trial_dir, model_dir_lib.EVAL_LOGDIR)
    files.remove(eval_dir)
    tags = dev_tags(results)
    summaries.write_scalars(eval_dir, step or 0, tags)
    several = len(results) > 1

    def tag(task, metric):
        return f"{task}/{metric}" if several else metric

    loss = [(train_dir, "loss", "train")] + [
        (eval_dir, tag(task, "loss"), f"dev {task}" if several else "dev")
        for task in results if tag(task, "loss") in tags]
    panels = [("loss (mean per example)", loss)]
    panels += [(f"{task} dev", [(eval_dir, tag(task, m), m) for m in values
                                if m != "loss" and tag(task, m) in tags])
               for task, values in results.items()]
    panels.append(("learning rate", [(train_dir, "learning_rate", "learning rate")]))
    return curves.plot_learning_curves(os.path.join(trial_dir, model_dir_lib.CURVES_FILE),
                                       panels, title=os.path.basename(trial_dir))


def run_summary(config, trials, evaluated):
    """The end-of-run lines: where the results, models, TensorBoard logs, curves and test
    predictions are (only those that exist)."""
    lines = ["Fine-tuning done."]
    if evaluated and files.exists(config.results_json):
        lines.append(f"results: {config.results_json} and {config.results_txt}")
    dirs = [t["model_dir"] for t in trials
            if t.get("model_dir") and model_dir_lib.is_complete(t["model_dir"])]
    if dirs:
        lines.append("trial models: " + ", ".join(dirs))
        lines.append(f"TensorBoard: tensorboard --logdir {os.path.dirname(config.model_dir)}")
    pngs = [p for p in (os.path.join(d, model_dir_lib.CURVES_FILE) for d in dirs)
            if files.exists(p)]
    if pngs:
        lines.append("learning curves: " + ", ".join(pngs))
    if config.write_test_outputs and files.exists(config.test_predictions_dir):
        lines.append(f"test predictions: {config.test_predictions_dir}")
    return lines
