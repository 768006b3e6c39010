"""The task abstraction: examples in, fixed-length features out."""

import dataclasses
import os

import numpy as np
import tensorflow as tf

from finetune import heads


@dataclasses.dataclass
class Example:
    """One example: `eid` keys test predictions; `label` is a str, float or tag list."""

    eid: int
    task_name: str
    text_a: object = None
    text_b: str | None = None
    label: object = None


class Task:
    """A fine-tuning task: reads its splits, featurises examples, builds its head, scores.

    The interface every task implements (the original's `Task`): `get_examples(split)`,
    `get_test_splits()`, `featurize(examples, is_training)`, `feature_specs()`,
    `build_head()` and `score(examples, outputs, split)`; and, for the record cache,
    `data_files(split)` and `featurize_settings()`.

    Args:
        config: a `FinetuningConfig` (raw data dir, max_seq_length, task_names, debug).
        name: the task name, as in `task_names`.
        tokenizer: a `pretrain_data.tokenization.FullTokenizer`.
    """

    task_type = None

    def __init__(self, config, name, tokenizer):
        self.config = config
        self.name = name
        self.tokenizer = tokenizer

    def get_examples(self, split):
        raise NotImplementedError

    def get_test_splits(self):
        return ["test"]

    def data_files(self, split):
        """The files `get_examples(split)` reads (the record cache is keyed by their
        content)."""
        raise NotImplementedError

    def featurize_settings(self):
        """{name: value} of every setting `featurize` depends on besides the tokenizer
        (the record cache is keyed by them); tasks add their own."""
        settings = {"max_seq_length": self.config.max_seq_length, "debug": self.config.debug}
        if self.config.data_source != "files":  # (files are keyed by their content)
            settings["data_source"] = self.config.data_source
        return settings

    def featurize(self, examples, is_training=False):
        """Featurises examples into records: a dict of stacked NumPy arrays with the shared
        `input_ids`, `input_mask`, `segment_ids` [N, S], `task_id` [N] and this task's own
        features (`feature_specs`)."""
        raise NotImplementedError

    def feature_specs(self):
        """{feature name: (shape without the batch dimension, NumPy dtype)} of this task's
        own features; every record carries those of every task."""
        raise NotImplementedError

    def build_head(self):
        """This task's head (a Keras layer, see `finetune.heads.Head`)."""
        return heads.Head(self.name, self.task_type, self.num_labels,
                          name=f"task_specific_{self.name}")

    def score(self, examples, outputs, split="dev"):
        """The original's metrics for `split`.

        Args:
            examples: the split's examples, as `get_examples(split)`.
            outputs: the head's outputs {key: array} for this task's records of `split`,
                in record order, padding removed.
        Returns:
            {metric: value}.
        """
        raise NotImplementedError

    def path(self, filename):
        """A data file of this task; a clear error naming the expected path if missing."""
        path = os.path.join(self.config.raw_data_dir(self.name), filename)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"task {self.name}: no such file {path}")
        return path

    @property
    def task_id(self):
        return self.config.task_names.index(self.name)

    def _base_features(self, rows, eids):
        """input_ids/input_mask/segment_ids [N, S] from (ids, segment_ids) lists, padded."""
        n, s = len(rows), self.config.max_seq_length
        features = {"input_ids": np.zeros((n, s), np.int32),
                    "input_mask": np.zeros((n, s), np.int32),
                    "segment_ids": np.zeros((n, s), np.int32),
                    "task_id": np.full(n, self.task_id, np.int32),
                    f"{self.name}_eid": np.asarray(eids, np.int32).reshape(n)}
        for i, (ids, segments) in enumerate(rows):
            features["input_ids"][i, :len(ids)] = ids
            features["input_mask"][i, :len(ids)] = 1
            features["segment_ids"][i, :len(ids)] = segments
        return features


def truncate_seq_pair(tokens_a, tokens_b, max_length):
    """Pops from the longer list (B on ties) until the pair fits, in place (the original)."""
    while len(tokens_a) + len(tokens_b) > max_length:
        (tokens_a if len(tokens_a) > len(tokens_b) else tokens_b).pop()
