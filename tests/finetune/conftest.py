"""What the fine-tuning tests share: task objects without data, the original fine-tuned
MNLI fixture's config, and tiny RTE and STS data with a model size to fine-tune on it."""

import json
import shutil

import pytest

from tests.conftest import FIXTURES

MNLI = FIXTURES / "original-tiny-mnli"
# A 2-layer H=64 encoder the size of the `original-tiny` checkpoint, fast on tiny data.
TINY = {"embedding_size": 32, "vocab_size": 1024, "max_seq_length": 16,
        "model_hparam_overrides": {"hidden_size": 64, "intermediate_size": 256,
                                   "num_attention_heads": 4, "num_hidden_layers": 2},
        "train_batch_size": 4, "eval_batch_size": 4, "predict_batch_size": 4,
        "num_train_epochs": 2.0, "learning_rate": 1e-3, "seed": 1}
TINY_CHECKPOINT = str(FIXTURES / "original-tiny" / "ckpt" / "model.ckpt")


def task(config, name, num_tags=5):
    """A real task object (no tokenizer needed to build heads); chunking gets `num_tags`."""
    from finetune import tasks as tasks_lib

    t = tasks_lib.get_task(config, name, tokenizer=None)
    if name == "chunk":
        t.label_mapping = {f"tag{i}": i for i in range(num_tags)}
    return t


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def mnli_config():
    """The config the original fine-tuned MNLI checkpoint was made with."""
    from finetune.config import FinetuningConfig

    kwargs = json.loads((MNLI / "config.json").read_text())["finetuning_config_kwargs"]
    return FinetuningConfig("tiny", "/nonexistent", **kwargs)


@pytest.fixture
def data_dir(tmp_path):
    """RTE (6 pairs) and STS (5 pairs) train, dev and test TSVs, and the tiny vocabulary."""
    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    rte = ["index\tsentence1\tsentence2\tlabel"] + [
        f"{i}\tthe cat sat {i}\ta cat {'sat' if i % 2 else 'ran'}\t"
        f"{'entailment' if i % 2 else 'not_entailment'}" for i in range(6)]
    sts = ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
           "sentence2\tscore"] + [f"{i}\tg\tf\ty\t{i}\tn\tn\ta plane {i}\tan air plane\t{i % 6}"
                                  for i in range(5)]
    for name, lines in (("rte", rte), ("sts", sts)):
        write(tmp_path / "finetuning_data" / name / "train.tsv", lines)
        write(tmp_path / "finetuning_data" / name / "dev.tsv", lines)
    write(tmp_path / "finetuning_data" / "rte" / "test.tsv",
          [line.rsplit("\t", 1)[0] for line in rte])
    write(tmp_path / "finetuning_data" / "sts" / "test.tsv",
          [line.rsplit("\t", 1)[0] for line in sts])
    return tmp_path
