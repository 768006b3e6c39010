"""The fine-tuning bench's comparison with the original: the batch and options it hands the
original's process, the ratios it prints, and (where the original's environment is cached
on this machine) the original's update itself."""

import json
import os
import stat
import sys

import numpy as np
import pytest

import finetune_throughput
import original
import original_finetune
from finetune import tasks as tasks_lib

FAKE_ORIGINAL = """
import argparse, json, shutil, sys
p = argparse.ArgumentParser()
p.add_argument("script")
for name in ("--src", "--batch", "--model-size", "--task", "--steps", "--warmup",
             "--num-train-steps"):
    p.add_argument(name)
a = p.parse_args()
shutil.copy(a.batch, {seen!r})
json.dump(vars(a), open({argv!r}, "w"))
print("progress on stdout first")
print(json.dumps({{"seq_per_s": 12.5}}))
"""


def small_features(batch=4, seq_len=32):
    config = finetune_throughput.bench_config("small", "float32", False, batch, seq_len)
    task = tasks_lib.get_task(config, finetune_throughput.TASK, tokenizer=None)
    return finetune_throughput.random_features(config, [task])


def executable(path, text):
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def fake_tools(tmp_path):
    """A stand-in for the original's tools: `orig_electra_env` prints a "Python" that keeps
    the batch and the options it was given (seen.npz, argv.json) and reports 12.5 seq/s."""
    script = tmp_path / "fake_original.py"
    script.write_text(FAKE_ORIGINAL.format(seen=str(tmp_path / "seen.npz"),
                                           argv=str(tmp_path / "argv.json")))
    python = executable(tmp_path / "python", f"#!/bin/sh\nexec {sys.executable} {script} \"$@\"\n")
    tools = tmp_path / "tools"
    tools.mkdir()
    executable(tools / "orig_electra_env", "#!/bin/sh\n"
               f"if [ \"$1\" = --src ]; then echo {tmp_path}/src; else echo {python}; fi\n")
    return tools


def test_the_original_gets_the_same_batch_and_its_rate_is_read(tmp_path, fake_tools):
    seen, argv = tmp_path / "seen.npz", tmp_path / "argv.json"
    args = finetune_throughput.parse_args(["--original-tools", str(fake_tools), "--models",
                                           "small", "--steps", "3", "--warmup", "1"])
    assert original.available(args) == (True, "")
    environment = original.environment(args.original_tools)
    assert environment == (str(tmp_path / "python"), f"{tmp_path}/src")
    features = small_features()
    assert finetune_throughput.original_rate(environment, args, "small", features) == 12.5
    with np.load(seen, allow_pickle=False) as stored:
        assert sorted(stored.files) == sorted(features)
        for key, value in features.items():
            np.testing.assert_array_equal(stored[key], value, err_msg=key)
            assert stored[key].dtype == value.dtype, key
    given = json.loads(argv.read_text())
    assert given["script"] == os.path.abspath(original_finetune.__file__)
    assert given["src"] == f"{tmp_path}/src" and given["model_size"] == "small"
    assert (given["task"], given["steps"], given["warmup"]) == ("mnli", "3", "1")
    assert given["num_train_steps"] == str(finetune_throughput.NUM_TRAIN_STEPS)
    assert not os.path.exists(given["batch"])  # the batch file is removed afterwards


def test_each_round_measures_the_original_first_and_ours_are_its_multiples(
        fake_tools, monkeypatch, capsys):
    # Ours timed as 5 steps/s (batch 4: 20 seq/s), plain Keras 4 (16 seq/s), the original
    # (the stand-in) 12.5 seq/s.
    monkeypatch.setattr(finetune_throughput, "train_rate", lambda *args, **kwargs: 5.0)
    monkeypatch.setattr(finetune_throughput, "plain_keras_rate", lambda *args, **kwargs: 4.0)
    rows = finetune_throughput.main([
        "--original-tools", str(fake_tools), "--original", "on", "--models", "small,tiny",
        "--batch", "4", "--seq-len", "32", "--precisions", "float32", "--matmul-size", "64"])
    out = capsys.readouterr().out
    measured = [line for line in out.splitlines() if line.startswith("round ")]
    assert measured == [f"round {r}: measured {row}" for r in (1, 2) for row in (
        "small      4 original TF1 float32       False: 12.50 seq/s",
        "small      4 float32                    False: 20.00 seq/s",
        "small      4 plain Keras float32        False: 16.00 seq/s",
        "tiny       4 float32                    False: 20.00 seq/s",
        "tiny       4 plain Keras float32        False: 16.00 seq/s")]
    assert "original TF1 code: not measured for the tiny model (the original has none)" in out
    assert "small: ours / original TF1 float32: float32 1.60x" in out
    assert "tiny: ours / original" not in out
    assert "small: ours / plain Keras (best of each): float32 1.25x" in out
    assert set(rows) == {("small", original.NAME, False), ("small", "float32", False),
                         ("tiny", "float32", False), ("small", "plain Keras float32", False),
                         ("tiny", "plain Keras float32", False)}


def test_ours_are_given_as_ratios_to_the_original(capsys):
    rows = {("small", original.NAME, False): (10.0, 0.3),
            ("small", "float32", False): (12.0, 0.36),
            ("small", "float32", True): (11.0, 0.33),
            ("small", "mixed_bfloat16", False): (19.0, 0.57)}
    finetune_throughput.print_targets(rows, {"float32": 2e11, "mixed_bfloat16": 4e11})
    out = capsys.readouterr().out
    assert "small: ours / original TF1 float32: float32 1.20x, mixed_bfloat16 1.90x" in out
    assert "small: float32 MFU 36.0%" in out


def test_original_on_needs_a_model_the_original_has_and_a_warm_up(capsys):
    with pytest.raises(SystemExit):
        finetune_throughput.parse_args(["--models", "tiny", "--original", "on"])
    assert "--original on: the original has no tiny model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        finetune_throughput.parse_args(["--models", "small", "--warmup", "0"])
    assert "--warmup must be >= 1 when the original is measured" in capsys.readouterr().err
    assert finetune_throughput.parse_args(["--warmup", "0", "--original", "off"]).warmup == 0


def test_the_original_runner_checks_its_source_folder(tmp_path, capsys):
    with pytest.raises(SystemExit):
        original_finetune.parse_args(["--src", str(tmp_path), "--batch", "b.npz"])
    assert f"no run_finetuning.py in {tmp_path}" in capsys.readouterr().err


def test_a_stand_in_module_names_itself_when_used():
    stand_in = original_finetune._Absent("scipy")
    with pytest.raises(ImportError, match="scipy.stats: scipy is not installed"):
        stand_in.stats  # noqa: B018 (the access is the test)
    assert not hasattr(stand_in, "__file__")  # introspection is answered, not an error


def cached_original():
    """The original's Python and code where `orig_electra_env` has built them already
    (building them downloads TensorFlow 2.21: not in a test)."""
    python = os.path.join(os.environ.get("ORIG_ELECTRA_VENV", "/tmp/orig-electra-venv"),
                          "bin", "python")
    src = os.environ.get("ORIG_ELECTRA_SRC", "/tmp/orig-electra-src")
    tool = os.path.join(original.TOOLS, "orig_electra_env")
    # The markers orig_electra_env leaves when its venv and patched code are complete.
    markers = (os.path.join(os.path.dirname(os.path.dirname(python)), ".orig_electra_ok"),
               os.path.join(src, ".orig_electra_patched"))
    return all(os.path.exists(p) for p in (python, os.path.join(src, "run_finetuning.py"),
                                            tool, *markers))


@pytest.mark.skipif(not cached_original(), reason="the original's environment is not built "
                    "on this machine (orig_electra_env, with ORIG_ELECTRA_GIT)")
def test_the_originals_update_runs_on_our_batch():
    args = finetune_throughput.parse_args(["--models", "small", "--steps", "1",
                                           "--warmup", "1", "--original", "on"])
    environment = original.environment(args.original_tools)
    assert finetune_throughput.original_rate(environment, args, "small",
                                             small_features(2, 32)) > 0
