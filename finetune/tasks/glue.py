"""GLUE tasks read from the original TSV files, or from tensorflow-datasets.

TSV rules, as the original: `csv.reader` with a tab delimiter and *no* quote character,
the header skipped per task and split, `eid` = row index minus the skipped header, dummy
labels (the first label, or 0.0) for test and diagnostic splits, MRPC/STS training pairs
added again swapped (`double_unordered`), STS scores divided by 5. Unlike the original,
which logged and skipped a malformed row, a malformed row is an error naming file and line.
"""

import csv

import numpy as np
import tensorflow as tf

from finetune import metrics
from finetune.tasks.base import Example, Task, truncate_seq_pair

csv.field_size_limit(2 ** 31 - 1)  # GLUE sentences can exceed csv's 128 KiB default


def read_tsv(path, max_lines=None):
    """Rows of a TSV file (tab-delimited, no quoting), as (line number, fields) pairs."""
    with tf.io.gfile.GFile(path, "r") as f:
        rows = []
        for i, line in enumerate(csv.reader(f, delimiter="\t", quotechar=None)):
            if max_lines and i >= max_lines:
                break
            rows.append((i + 1, line))
    return rows


class ClassificationTask(Task):
    """A sentence (pair) classification task.

    Args:
        label_list: the labels as they appear in the TSV; a label's id is its index.
    """

    task_type = "classification"

    def __init__(self, config, name, tokenizer, label_list):
        super().__init__(config, name, tokenizer)
        self.label_list = list(label_list)
        self.num_labels = len(self.label_list)

    def dummy_label(self):
        return self.label_list[0]

    def _parse_label(self, value):
        if value not in self.label_list:
            raise ValueError(f"label {value!r} is not one of {self.label_list}")
        return value

    def data_files(self, split):
        return [] if self.config.data_source == "tfds" else [self.path(split + ".tsv")]

    def featurize_settings(self):
        return dict(super().featurize_settings(),
                    double_unordered=self.config.double_unordered)

    def get_examples(self, split):
        if self.config.data_source == "tfds":
            return tfds_examples(self, split, self.config.tfds_data_dir)
        path, = self.data_files(split)
        # Debug mode reads the first 100 lines, header included (as the original).
        rows = read_tsv(path, max_lines=100 if self.config.debug else None)
        return self._create_examples(rows, split, path)

    def _create_examples(self, rows, split, path):
        raise NotImplementedError

    def _load_glue(self, rows, split, path, text_a_loc, text_b_loc, label_loc,
                   skip_first_line=False, eid_offset=0, swap=False):
        examples = []
        for i, (line_number, line) in enumerate(rows):
            if i == 0 and skip_first_line:
                continue
            try:
                text_a = line[text_a_loc]
                text_b = None if text_b_loc is None else line[text_b_loc]
                if "test" in split or "diagnostic" in split:
                    label = self.dummy_label()
                else:
                    label = self._parse_label(line[label_loc])
            except (IndexError, ValueError) as e:
                raise ValueError(f"{path}:{line_number}: malformed {self.name} row "
                                 f"({len(line)} fields): {e}") from None
            if swap:
                text_a, text_b = text_b, text_a
            eid = i - (1 if skip_first_line else 0) + eid_offset
            examples.append(Example(eid, self.name, text_a, text_b, label))
        return examples

    def _label_features(self, examples):
        return {f"{self.name}_label_ids": np.asarray(
            [self.label_list.index(e.label) for e in examples], np.int32)}

    def feature_specs(self):
        return {f"{self.name}_eid": ((), np.int32), f"{self.name}_label_ids": ((), np.int32)}

    def score(self, examples, outputs, split="dev"):
        """CoLA: MCC; others: accuracy (plus F1 for MRPC and QQP, as GLUE reports it);
        and the mean loss."""
        labels, predictions = outputs["label_ids"], outputs["predictions"]
        results = ({"mcc": metrics.mcc(labels, predictions)} if self.name == "cola"
                   else {"accuracy": metrics.accuracy(labels, predictions)})
        if self.name in ("mrpc", "qqp"):
            results["f1"] = metrics.f1(labels, predictions)
        results["loss"] = float(np.mean(outputs["loss"]))
        return results

    def featurize(self, examples, is_training=False):
        """`[CLS] A [SEP] B [SEP]` ids, segments 0/1, the pair truncated longest first."""
        s = self.config.max_seq_length
        texts = [e.text_a for e in examples] + [e.text_b or "" for e in examples]
        ids = self.tokenizer.tokenize_to_id_lists(texts)
        cls_id, sep_id = self.tokenizer.vocab["[CLS]"], self.tokenizer.vocab["[SEP]"]
        rows = []
        for tokens_a, tokens_b in zip(ids[:len(examples)], ids[len(examples):]):
            if tokens_b:
                truncate_seq_pair(tokens_a, tokens_b, s - 3)
            else:
                tokens_a = tokens_a[:s - 2]
            row = [cls_id] + tokens_a + [sep_id]
            segments = [0] * len(row)
            if tokens_b:
                row += tokens_b + [sep_id]
                segments += [1] * (len(tokens_b) + 1)
            rows.append((row, segments))
        features = self._base_features(rows, [e.eid for e in examples])
        features.update(self._label_features(examples))
        return features


class RegressionTask(ClassificationTask):
    """A regression task; targets are normalised as (y − min) / max (STS: y / 5)."""

    task_type = "regression"

    def __init__(self, config, name, tokenizer, min_value, max_value):
        super().__init__(config, name, tokenizer, [])
        self.num_labels = 1
        self.min_value, self.max_value = min_value, max_value

    def dummy_label(self):
        return 0.0

    def _parse_label(self, value):
        label = float(value)
        if not self.min_value <= label <= self.max_value:
            raise ValueError(f"score {label} outside [{self.min_value}, {self.max_value}]")
        return label

    def feature_specs(self):
        return {f"{self.name}_eid": ((), np.int32), f"{self.name}_targets": ((), np.float32)}

    def score(self, examples, outputs, split="dev"):
        """Pearson and Spearman ×100, MSE on the normalised scale, and the mean loss."""
        targets, predictions = outputs["targets"], outputs["predictions"]
        return {"pearson": metrics.pearson(targets, predictions),
                "spearman": metrics.spearman(targets, predictions),
                "mse": metrics.mse(targets, predictions),
                "loss": float(np.mean(outputs["loss"]))}

    def _label_features(self, examples):
        return {f"{self.name}_targets": np.asarray(
            [(e.label - self.min_value) / self.max_value for e in examples], np.float32)}


class CoLA(ClassificationTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "cola", tokenizer, ["0", "1"])

    def _create_examples(self, rows, split, path):
        test = split == "test"
        return self._load_glue(rows, split, path, 1 if test else 3, None, 1, test)


class MRPC(ClassificationTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "mrpc", tokenizer, ["0", "1"])

    def _create_examples(self, rows, split, path):
        examples = self._load_glue(rows, split, path, 3, 4, 0, True)
        if self.config.double_unordered and split == "train":
            examples += self._load_glue(rows, split, path, 3, 4, 0, True, len(examples), True)
        return examples


class MNLI(ClassificationTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "mnli", tokenizer, ["contradiction", "entailment", "neutral"])

    def data_files(self, split):
        return super().data_files(split + "_matched" if split == "dev" else split)

    def get_test_splits(self):
        return ["test_matched", "test_mismatched", "diagnostic"]

    def _create_examples(self, rows, split, path):
        if split == "diagnostic":
            return self._load_glue(rows, split, path, 1, 2, None, True)
        return self._load_glue(rows, split, path, 8, 9, -1, True)


class SST(ClassificationTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "sst", tokenizer, ["0", "1"])

    def _create_examples(self, rows, split, path):
        if "test" in split:
            return self._load_glue(rows, split, path, 1, None, None, True)
        return self._load_glue(rows, split, path, 0, None, 1, True)


class QQP(ClassificationTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "qqp", tokenizer, ["0", "1"])

    def _create_examples(self, rows, split, path):
        test = split == "test"
        return self._load_glue(rows, split, path, 1 if test else 3, 2 if test else 4, 5, True)


class RTE(ClassificationTask):
    def __init__(self, config, tokenizer, name="rte"):
        super().__init__(config, name, tokenizer, ["entailment", "not_entailment"])

    def _create_examples(self, rows, split, path):
        return self._load_glue(rows, split, path, 1, 2, 3, True)


class QNLI(RTE):
    def __init__(self, config, tokenizer):
        super().__init__(config, tokenizer, name="qnli")


class STS(RegressionTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "sts", tokenizer, 0.0, 5.0)

    def _create_examples(self, rows, split, path):
        if split == "test":
            return self._load_glue(rows, split, path, -2, -1, None, True)
        examples = self._load_glue(rows, split, path, -3, -2, -1, True)
        if self.config.double_unordered and split == "train":
            examples += self._load_glue(rows, split, path, -3, -2, -1, True, len(examples),
                                        True)
        return examples


# tensorflow-datasets: task -> (dataset, text features, our split -> tfds split).
TFDS_GLUE = {
    "cola": ("glue/cola", ("sentence",), {}),
    "sst": ("glue/sst2", ("sentence",), {}),
    "mrpc": ("glue/mrpc", ("sentence1", "sentence2"), {}),
    "qqp": ("glue/qqp", ("question1", "question2"), {}),
    "sts": ("glue/stsb", ("sentence1", "sentence2"), {}),
    "mnli": ("glue/mnli", ("premise", "hypothesis"),
             {"dev": "validation_matched", "diagnostic": ("glue/ax", "test")}),
    "qnli": ("glue/qnli", ("question", "sentence"), {}),
    "rte": ("glue/rte", ("sentence1", "sentence2"), {}),
}


def tfds_examples(task, split, data_dir=None):
    """A GLUE split from tensorflow-datasets as `Example`s (labels mapped by name).

    Args:
        task: a GLUE task object (its `name`, `label_list` and `config` are used).
        split: "train", "dev", "test" or an MNLI test split.
        data_dir: the tfds data directory (None: tfds' default).
    Returns:
        A list of `Example`; `eid` is the tfds `idx`. MRPC/STS train are doubled as the
        TSV reader does.
    """
    import tensorflow_datasets as tfds

    name, text_keys, splits = TFDS_GLUE[task.name]
    tfds_split = splits.get(split, "validation" if split == "dev" else split)
    if isinstance(tfds_split, tuple):
        name, tfds_split = tfds_split
    dataset, info = tfds.load(name, split=tfds_split, data_dir=data_dir, with_info=True,
                              download=False)
    label_names = (None if task.task_type == "regression"
                   else info.features["label"].names)
    examples = []
    for record in tfds.as_numpy(dataset):
        texts = [record[k].decode("utf-8") for k in text_keys]
        label = record["label"]
        if "test" in split or "diagnostic" in split or label < 0:
            label = task.dummy_label()
        elif task.task_type == "regression":
            label = float(label)
        else:
            label = _tfds_label(task, label_names[int(label)], int(label))
        examples.append(Example(int(record["idx"]), task.name, texts[0],
                                texts[1] if len(texts) > 1 else None, label))
    if task.name in ("mrpc", "sts") and split == "train" and task.config.double_unordered:
        n = len(examples)
        examples += [Example(e.eid + n, e.task_name, e.text_b, e.text_a, e.label)
                     for e in examples[:n]]
    return examples


def _tfds_label(task, name, index):
    """tfds names MNLI/RTE/QNLI labels as we do; binary tasks use "0"/"1" by index."""
    return name if name in task.label_list else task.label_list[index]
