"""The command line: errors, `--help` without importing TensorFlow, tfds data; the reported
dev metrics are those of the saved model."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import FIXTURES, REPO

HELP = """
import runpy, sys
sys.argv = ["run_finetuning", "--help"]
try:
    runpy.run_module("finetune.run_finetuning", run_name="__main__")
except SystemExit as e:
    print("EXIT", e.code, "tensorflow" in sys.modules)
"""


def test_cli_rejects_unknown_hparam(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "finetune.run_finetuning", "--data-dir", str(tmp_path),
         "--model-name", "m", "--hparams", '{"learning_rat": 1}'],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "error: Unknown hparam: learning_rat" in result.stderr


def test_help_exits_0_without_importing_tensorflow():
    result = subprocess.run([sys.executable, "-c", HELP], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--data-dir" in result.stdout and "--hparams" in result.stdout
    assert result.stdout.strip().endswith("EXIT 0 False"), result.stdout[-500:]


def test_tfds_glue_from_the_command_line(tmp_path, capsys):
    """`"data_source": "tfds"` reads GLUE from tensorflow-datasets (mocked: in-process)."""
    import tensorflow_datasets as tfds

    from electra_common import cli
    from finetune import run_finetuning
    from tests.finetune.conftest import TINY

    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    hparams = dict(TINY, task_names=["rte"], init_checkpoint=None, data_source="tfds",
                   tfds_data_dir=str(tmp_path / "tfds"))
    argv = ["run_finetuning", "--data-dir", str(tmp_path), "--model-name", "m",
            "--hparams", json.dumps(hparams)]
    with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
        cli.run(run_finetuning.main, run_finetuning.define_flags, argv=argv)
    out = capsys.readouterr().out
    assert '"data_source": "tfds"' in out and "rte: accuracy: " in out
    results = json.loads((tmp_path / "models/m/results/rte_results.json").read_text())
    assert results["hparams"]["data_source"] == "tfds"
    assert results["trials"][0]["global_step"] == 4  # 8 records, batch 4, 2 epochs
    assert not (tmp_path / "finetuning_data").exists() and not (tmp_path / "tfds").exists()
    with pytest.raises(SystemExit, match='error: data_source "tfds": no tensorflow-datasets '
                                         "source for chunk; the tasks that have one: cola"):
        cli.run(run_finetuning.main, run_finetuning.define_flags, argv=argv[:-1] + [
            json.dumps(dict(hparams, task_names=["chunk"]))])


def test_reported_dev_metrics_are_those_of_the_saved_model(data_dir):
    """RTE accuracy and loss recomputed in NumPy from the saved model's dev logits and the
    labels read from dev.tsv."""
    from finetune import model_dir
    from finetune.config import FinetuningConfig
    from finetune.trials import run_finetuning
    from tests.finetune.conftest import TINY

    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"],
                              **dict(TINY, init_checkpoint=None))
    reported = run_finetuning(config)[0]["rte"]
    rows = [line.split("\t") for line in
            (data_dir / "finetuning_data/rte/dev.tsv").read_text().splitlines()[1:]]
    labels = np.array([["entailment", "not_entailment"].index(row[3]) for row in rows])
    saved = model_dir.load(config.model_dir + "_1")
    rte = saved.tasks[0]
    features = rte.featurize(rte.get_examples("dev"))
    features["task_id"] = np.zeros(len(labels), np.int32)
    logits = saved.model(features, training=False)["rte"]["logits"].numpy().astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    assert set(reported) == {"accuracy", "loss"}
    assert reported["accuracy"] == pytest.approx(100 * np.mean(logits.argmax(-1) == labels))
    assert reported["loss"] == pytest.approx(-np.mean(log_probs[np.arange(len(labels)), labels]),
                                             rel=1e-5)
