"""The one command-line framework: help, flag errors, user errors, exit statuses, the
generic flags (--verbose, --list-hparams), the stderr filter, and every console script."""

import logging
import os
import subprocess
import sys
import tomllib

import pytest
from absl import flags

from electra_common import cli
from tests.conftest import REPO


def define_flags(fv):
    flags.DEFINE_string("data-dir", None, "Where the data is.", flag_values=fv, required=True)
    flags.DEFINE_integer("max-seq-length", 128, "Tokens per example.", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress.", flag_values=fv)


def run(argv, main=lambda args: None):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(main, define_flags, "Does things.", ["prog"] + argv)
        raise SystemExit(0)
    return exit_info.value.code


def test_help_lists_the_flags_and_exits_0(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Does things.") and "--data-dir" in out
    assert "--max-seq-length  (default: '128')" in out and "--[no]quiet" in out
    assert "--[no]verbose" in out and "--list-hparams" not in out


def test_flags_arrive_with_underscores():
    seen = {}
    assert run(["--data-dir", "d", "--max-seq-length=64", "--quiet"],
               lambda args: seen.update(vars(args))) == 0
    assert seen == {"data_dir": "d", "max_seq_length": 64, "quiet": True, "verbose": False}


@pytest.mark.parametrize("argv,message", [
    (["--data_dir", "d"], "Did you mean: data-dir"),
    ([], "--data-dir"),
    (["--data-dir", "d", "extra"], "unexpected arguments: extra"),
    (["--data-dir", "d", "--max-seq-length", "x"], "max-seq-length"),
])
def test_flag_errors_exit_2_with_one_line(argv, message, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "--help" in err


def test_user_errors_exit_1_as_one_line_and_usage_errors_2(capsys, monkeypatch):
    def missing(args):
        raise FileNotFoundError("x.txt: no such file")

    assert run(["--data-dir", "d"], missing) == "error: x.txt: no such file"
    monkeypatch.setenv("ELECTRA_TF_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        cli.run(missing, define_flags, None, ["prog", "--data-dir", "d"])
    monkeypatch.delenv("ELECTRA_TF_TRACEBACK")

    def usage(args):
        raise cli.UsageError("give exactly one of --a or --b")

    assert run(["--data-dir", "d"], usage) == 2
    assert "error: give exactly one of --a or --b" in capsys.readouterr().err

    def bug(args):
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):
        cli.run(bug, define_flags, None, ["prog", "--data-dir", "d"])


def test_list_hparams_needs_no_other_flag_and_exits_0(capsys):
    def listing(args):
        if args.max_seq_length < 0:
            raise ValueError("max_seq_length must be positive")
        return f"listed with data_dir={args.data_dir} max_seq_length={args.max_seq_length}"

    def main(args):
        raise AssertionError("main does not run with --list-hparams")

    def run_listing(argv):
        with pytest.raises(SystemExit) as exit_info:
            cli.run(main, define_flags, "Does things.", ["prog", *argv], list_hparams=listing)
        return exit_info.value.code

    assert run_listing(["--help"]) == 0
    assert "--[no]list-hparams" in capsys.readouterr().out
    assert run_listing(["--list-hparams"]) == 0  # --data-dir is required, yet not needed
    assert capsys.readouterr().out == "listed with data_dir=None max_seq_length=128\n"
    assert run_listing(["--max-seq-length", "64", "--list-hparams"]) == 0
    assert capsys.readouterr().out.endswith("max_seq_length=64\n")
    assert run_listing(["--list-hparams", "--max-seq-length", "-1"]) == \
        "error: max_seq_length must be positive"
    assert run_listing(["--list-hparams", "--max-seq-lenght", "1"]) == 2
    assert "Did you mean: max-seq-length" in capsys.readouterr().err
    assert run(["--list-hparams"]) == 2  # a command without the callback has no such flag


def test_verbose_sets_the_python_log_levels():
    tf_logger = logging.getLogger("tensorflow")
    try:
        assert run(["--data-dir", "d", "--verbose"]) == 0
        assert tf_logger.level == logging.INFO
        assert run(["--data-dir", "d"]) == 0
        assert tf_logger.level == logging.ERROR
    finally:
        tf_logger.setLevel(logging.NOTSET)


COMMAND = """
import os, sys
from absl import flags
from electra_common import cli

def main(args):
    import tensorflow as tf
    tf.constant(1.0) + 1.0  # TensorFlow's start-up lines, as any command gets them
    sys.stderr.write("a python line\\n")
    os.write(2, b"a C++ line\\n")
    raise FileNotFoundError("data.txt: no such file")

sys.argv = ["prog", *sys.argv[1:]]
cli.run(main, lambda fv: None)
"""


def test_a_command_process_is_quiet_unless_verbose():
    """TensorFlow's start-up lines go; our lines, C-level or Python, stay; --verbose."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def stderr_lines(*argv):
        result = subprocess.run([sys.executable, "-c", COMMAND, *argv], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stderr
        return result.stderr.splitlines()

    quiet = stderr_lines()
    assert sorted(quiet) == ["a C++ line", "a python line", "error: data.txt: no such file"]
    verbose = stderr_lines("--verbose")
    assert set(quiet) < set(verbose) and verbose[-1] == "error: data.txt: no such file"


FILTER_CHECK = """
import os, sys
from electra_common import cli
cli.filter_stderr()
for line in sys.argv[1:]:
    os.write(2, line.encode() + b"\\n")
os.write(2, b"the last words, no newline")
os._exit(3)  # no exit handler runs: the filter still passes everything on
"""

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796205535.333257   21975 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "E0000 00:00:1796205551.868127   22115 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796205535.417872   21975 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.",
]


def test_the_filter_drops_only_the_start_up_lines_and_loses_nothing():
    kept = ["E0000 00:00:1796205551.868127   22115 cuda_platform.cc:52] other error",
            "Traceback (most recent call last):", "To enable the following: something else"]
    result = subprocess.run([sys.executable, "-c", FILTER_CHECK, *NOISE, *kept], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr == "\n".join(kept) + "\nthe last words, no newline"


def console_scripts():
    """[(script name, module, function)] of pyproject.toml."""
    with open(REPO / "pyproject.toml", "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    return [(name, *target.split(":")) for name, target in sorted(scripts.items())]


SCRIPTS_CHECK = """
import contextlib, importlib, io, sys

def call(module, function, argv):
    sys.argv = [module, *argv]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            getattr(importlib.import_module(module), function)()
            code = "returned"
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()

for name, module, function in {scripts!r}:
    code, out, _ = call(module, function, ["--help"])
    flags = sorted(line.split()[0] for line in out.splitlines() if line.startswith("  --"))
    print(name, "help", code, ",".join(flags), "tensorflow" in sys.modules)
    code, _, err = call(module, function, ["--verbos"])
    print(name, "misspelt", code, err.replace("\\n", " | "))
"""


def test_every_console_script_answers_help_and_a_misspelt_flag_without_tensorflow():
    """--help: exit 0, the flags listed (generic ones included), no TensorFlow imported (a
    deterministic proxy for "fast"); a misspelt flag: exit 2 with absl's suggestion."""
    scripts = console_scripts()
    result = subprocess.run([sys.executable, "-c", SCRIPTS_CHECK.format(scripts=scripts)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 2 * len(scripts), result.stdout
    for (name, module, _), help_line, misspelt in zip(scripts, lines[::2], lines[1::2]):
        _, _, code, shown, heavy = help_line.split(" ")
        assert (code, heavy) == ("0", "False"), help_line
        assert "--[no]verbose" in shown.split(","), help_line
        if module in ("electra_tf.run_pretraining", "finetune.run_finetuning"):
            assert {"--data-dir", "--hparams", "--[no]list-hparams"} <= set(shown.split(","))
        assert misspelt.startswith(f"{name} misspelt 2 error: Unknown command line flag "
                                   "'verbos'. Did you mean: verbose ?"), misspelt
