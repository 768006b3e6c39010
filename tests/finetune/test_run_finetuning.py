"""The command line: errors, and `--help` without importing TensorFlow."""

import subprocess
import sys

from tests.conftest import REPO

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
