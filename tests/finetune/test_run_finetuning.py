"""The command line: errors, `--help` without importing TensorFlow, tfds data."""

import json
import shutil
import subprocess
import sys

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
