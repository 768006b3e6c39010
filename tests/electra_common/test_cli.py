"""The one command-line framework: help, flag errors, user errors, exit statuses."""

import pytest
from absl import flags

from electra_common import cli


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


def test_flags_arrive_with_underscores():
    seen = {}
    assert run(["--data-dir", "d", "--max-seq-length=64", "--quiet"],
               lambda args: seen.update(vars(args))) == 0
    assert seen == {"data_dir": "d", "max_seq_length": 64, "quiet": True}


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
