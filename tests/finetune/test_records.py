"""Records: padding to whole batches, and the TFRecord cache reused and rebuilt."""

import json
import os

import numpy as np

from finetune import records
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from pretrain_data.tokenization import FullTokenizer
from tests.finetune.conftest import TINY


def test_pad_to_multiple():
    features = {"task_id": np.array([0, 1, 0]), "input_ids": np.ones((3, 2), np.int32)}
    padded = records.pad_to_multiple(features, 4, n_tasks=2)
    assert padded["task_id"].tolist() == [0, 1, 0, 2]
    assert padded["input_ids"][3].tolist() == [0, 0]


def test_tfrecord_cache_is_reused_and_rebuilt_when_stale(data_dir, capsys):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte", "sts"], **TINY)
    tokenizer = FullTokenizer(config.vocab_file)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    _, built = records.featurize(config, tasks, "train", is_training=True)
    path = os.path.join(config.preprocessed_data_dir, "rte_sts_train.tfrecord")
    assert json.loads(open(path + ".metadata").read())["n_examples"] == 6 + 5 * 2  # STS doubled
    examples, cached = records.featurize(config, tasks, "train", is_training=True)
    assert "cached train records" in capsys.readouterr().out and examples is None
    assert sorted(cached) == sorted(built)
    for key in built:
        assert cached[key].dtype == built[key].dtype
        np.testing.assert_array_equal(cached[key], built[key])
    longer = FinetuningConfig("tiny", str(data_dir), task_names=["rte", "sts"],
                              **dict(TINY, max_seq_length=20))
    _, rebuilt = records.featurize(longer, tasks_lib.get_tasks(longer, tokenizer),
                                   "train", is_training=True)
    assert "cached" not in capsys.readouterr().out
    assert rebuilt["input_ids"].shape == (16, 20)
    # Written through the atomic helper: no temporary left beside the cache.
    assert sorted(os.listdir(config.preprocessed_data_dir)) == [
        "rte_sts_train.tfrecord", "rte_sts_train.tfrecord.metadata"]
