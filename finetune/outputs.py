"""What a fine-tuning run writes besides its models: results, and test-set predictions.

- Results: every trial's dev metrics and their summary, as JSON and text
  (`electra_tf.training.results.write_results`), rewritten after each trial.
- Test-set predictions (GLUE and SQuAD 2.0 only, as the original): JSON per task and
  split, and for GLUE the TSV files the GLUE server takes.
"""

import os

import numpy as np

from electra_common import files
from electra_tf.training import results as results_lib
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


def write_results(config, all_results):
    """Rewrites the results JSON and TXT with every trial so far and their summary.

    JSON: {"trials": [{task: {metric: value}}], "summary": `summarize(...)`}. TXT: one line
    per task and trial (`result_line`), then one summary line per task,
    `task (N trials): k: mean M median M std S - ...`.
    """
    lines = [result_line(task, values) for trial_results in all_results
             for task, values in trial_results.items()]
    results_lib.write_results(config.results_json, config.results_txt,
                              {"trials": all_results, "summary": summarize(all_results)},
                              "\n".join(lines + summary_lines(all_results)))


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
