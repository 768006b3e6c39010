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


def _featurize(data_dir, split="dev", **kwargs):
    config = FinetuningConfig("tiny", str(data_dir), **dict(TINY, task_names=["rte"], **kwargs))
    tokenizer = FullTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)
    tasks = tasks_lib.get_tasks(config, tokenizer)
    return records.featurize(config, tasks, split, is_training=split == "train")[1]


def test_a_changed_data_file_rebuilds_the_cache(data_dir, capsys):
    dev = data_dir / "finetuning_data" / "rte" / "dev.tsv"
    first = _featurize(data_dir)
    assert "cached" not in capsys.readouterr().out
    # The same size and modification time, other words: only the content hash tells.
    stat = os.stat(dev)
    dev.write_text(dev.read_text().replace("the cat sat 3", "the dog sat 3"))
    os.utime(dev, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(dev).st_size == stat.st_size
    changed = _featurize(data_dir)
    assert "rebuilding dev records: rte/dev.tsv changed" in capsys.readouterr().out
    assert (changed["input_ids"] != first["input_ids"]).any()
    np.testing.assert_array_equal(changed["input_ids"], _featurize(data_dir)["input_ids"])
    assert "reading 6 cached dev records" in capsys.readouterr().out
    os.utime(dev)  # touched, content unchanged: still current
    _featurize(data_dir)
    assert "reading 6 cached dev records" in capsys.readouterr().out


def test_vocabulary_tokenizer_and_settings_rebuild_the_cache(data_dir, capsys):
    _featurize(data_dir, "train")
    capsys.readouterr()
    _featurize(data_dir, "train", do_lower_case=False)
    assert ("rebuilding train records: do_lower_case changed (True -> False)"
            in capsys.readouterr().out)
    _featurize(data_dir, "train", do_lower_case=False, double_unordered=False)
    assert "double_unordered changed (True -> False)" in capsys.readouterr().out
    with open(data_dir / "vocab.txt", "a") as f:
        f.write("zyzzyva\n")
    _featurize(data_dir, "train", do_lower_case=False, double_unordered=False, vocab_size=1025)
    assert "rebuilding train records: vocab_file changed" in capsys.readouterr().out


def test_task_order_and_qa_settings_are_part_of_the_key(data_dir, capsys):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte", "sts"], **TINY)
    tokenizer = FullTokenizer(config.vocab_file)
    records.featurize(config, tasks_lib.get_tasks(config, tokenizer), "dev")
    swapped = FinetuningConfig("tiny", str(data_dir), task_names=["sts", "rte"],
                               preprocessed_data_dir=config.preprocessed_data_dir, **TINY)
    _, features = records.featurize(swapped, tasks_lib.get_tasks(swapped, tokenizer), "dev")
    assert ("rebuilding dev records: tasks changed (['rte', 'sts'] -> ['sts', 'rte'])"
            in capsys.readouterr().out)
    assert features["task_id"].tolist() == [0] * 5 + [1] * 6  # sts first, rte is task 1 now
    squad_dir = data_dir / "finetuning_data" / "squadv1"
    squad_dir.mkdir()
    (squad_dir / "dev.json").write_text(json.dumps({"data": [{"paragraphs": [{
        "context": "the cat sat", "qas": [{"id": "q", "question": "who", "answers": []}]}]}]}))
    metadata = {}
    for stride in (128, 64):
        squad = FinetuningConfig("tiny", str(data_dir), task_names=["squadv1"], doc_stride=stride)
        metadata[stride] = records.cache_metadata(
            squad, tasks_lib.get_tasks(squad, tokenizer), "dev")
    assert records.changed_inputs(metadata[128], metadata[64]) == [
        "doc_stride changed (128 -> 64)"]
    assert metadata[64]["squadv1/dev.json"]["bytes"] == os.path.getsize(squad_dir / "dev.json")
