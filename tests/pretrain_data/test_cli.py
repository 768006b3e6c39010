"""The command lines: the original's flags, a fast `--help`, one-line errors, cleanup."""

import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import pytest

from electra_common import cli
from pretrain_data import build, build_openwebtext_pretraining_dataset as owt_cli
from pretrain_data import build_pretraining_dataset as files_cli
from pretrain_data import build_tfds_pretraining_dataset as tfds_cli
from pretrain_data import learn_vocab as vocab_cli
from pretrain_data import tokenization
from tests.pretrain_data.corpora import VOCAB, make_corpus, make_openwebtext, read_records

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
COMMANDS = {
    "pretrain_data.build_pretraining_dataset": ["--corpus-dir", "--no-lower-case",
                                                "--blanks-separate-docs", "--num-out-files"],
    "pretrain_data.build_openwebtext_pretraining_dataset": ["--data-dir", "--seed",
                                                            "--no-strip-accents"],
    "pretrain_data.build_tfds_pretraining_dataset": ["--dataset", "--text-feature",
                                                     "--skip-invalid-lines"],
    "pretrain_data.learn_vocab": ["--corpus-dir", "--vocab-size", "--lower-thresh",
                                  "--no-lower-case"],
}
# Runs a command's `--help` as `python -m` would, then checks what it imported.
HELP_SNIPPET = """
import runpy, sys
sys.argv = ["x", "--help"]
try:
    runpy.run_module(sys.argv_module, run_name="__main__")
except SystemExit as e:
    assert e.code in (0, None), e.code
else:
    raise AssertionError("--help did not exit")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_text",
                                                           "tensorflow_datasets", "keras"))
assert not heavy, heavy
"""


def run_cli(module, *argv):
    cli.run(module.main, module.define_flags, module.__doc__, argv=["prog", *map(str, argv)])


def python(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_help_is_fast_and_imports_no_tensorflow(module):
    snippet = HELP_SNIPPET.replace("sys.argv_module", repr(module))
    start = time.time()
    process = python("-c", snippet)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert time.time() - start < 10  # in practice ~0.1 s; TensorFlow alone takes seconds
    assert "flags:" in out and "Usage:" in out
    for flag in COMMANDS[module]:  # absl shows the booleans as --[no]name
        assert re.search(r"^  (%s|--\[no\]%s)\b" % (flag, flag[2:]), out, re.M), flag


def test_missing_required_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(files_cli, "--corpus-dir", "x", "--vocab-file", VOCAB)
    assert exit_info.value.code == 2 and "--output-dir" in capsys.readouterr().err


def test_seed_makes_cli_output_reproducible(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    outputs = []
    for run, seed in enumerate([1, 1, 2]):
        out = tmp_path / ("out%d" % run)
        run_cli(files_cli, "--corpus-dir", corpus, "--vocab-file", VOCAB, "--output-dir", out,
                "--max-seq-length", 16, "--num-out-files", 2, "--seed", seed, "--quiet")
        outputs.append([(out / n).read_bytes() for n in sorted(os.listdir(out))])
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


def test_lower_case_and_strip_accents_flags(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("The Café\n", encoding="utf-8")
    tokenizer = tokenization.FullTokenizer(VOCAB)
    the, cafe = tokenizer.vocab["the"], tokenizer.convert_tokens_to_ids(["c", "##a", "##f",
                                                                         "##e"])
    unk = tokenizer.vocab["[UNK]"]
    expected = {(): [the] + cafe, ("--no-lower-case",): [unk, unk],
                ("--nodo-lower-case",): [unk, unk], ("--do-lower-case",): [the] + cafe,
                ("--no-strip-accents",): [the, unk]}
    for i, (flags, ids) in enumerate(expected.items()):
        out = tmp_path / ("out%d" % i)
        run_cli(files_cli, "--corpus-dir", corpus, "--vocab-file", VOCAB, "--output-dir", out,
                "--max-seq-length", 16, "--num-out-files", 1, "--seed", 0, "--quiet", *flags)
        [(input_ids, _, _)] = read_records(out)
        assert list(input_ids[:len(ids) + 2]) == [101] + ids + [102], flags


@pytest.mark.parametrize("value, documents", [(None, 3), ("", 2), ("False", 3), ("0", 3)])
def test_blanks_separate_docs_keeps_the_originals_type_bool(tmp_path, capsys, value, documents):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "f.txt").write_text("the\n\nan\n", encoding="utf-8")
    (corpus / "g.txt").write_text("re\n", encoding="utf-8")
    flag = [] if value is None else ["--blanks-separate-docs", value]
    run_cli(files_cli, "--corpus-dir", corpus, "--vocab-file", VOCAB, "--output-dir",
            tmp_path / "out", "--num-out-files", 1, "--quiet", *flag)
    assert "%d documents" % documents in capsys.readouterr().out


def test_invalid_utf8_cli_exit_message(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(SystemExit, match=r"^error: .*latin1.txt, line 1: invalid UTF-8"):
        run_cli(files_cli, "--corpus-dir", corpus, "--vocab-file", VOCAB,
                "--output-dir", tmp_path / "out", "--quiet")


def test_openwebtext_and_tfds_commands(tmp_path, capsys):
    data = make_openwebtext(tmp_path / "data")
    run_cli(owt_cli, "--data-dir", data, "--max-seq-length", 32, "--num-out-files", 2,
            "--seed", 0, "--quiet")
    assert "6 files, 6 documents" in capsys.readouterr().out
    assert len(os.listdir(data / "pretrain_tfrecords")) == 2
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=4):
        run_cli(tfds_cli, "--dataset", "imdb_reviews", "--vocab-file", VOCAB, "--output-dir",
                tmp_path / "tfds", "--num-out-files", 2, "--quiet")
        assert "4 documents" in capsys.readouterr().out
        with pytest.raises(SystemExit, match="^error: Dataset imdb_reviews has no feature 'body'"):
            run_cli(tfds_cli, "--dataset", "imdb_reviews", "--text-feature", "body",
                    "--vocab-file", VOCAB, "--output-dir", tmp_path / "tfds2", "--quiet")


def test_learn_vocab_command(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("\n".join(["Electra Token Café"] * 50), encoding="utf-8")
    for flags, expect in [((), "cafe"), (("--no-lower-case",), "Café")]:
        vocab_file = tmp_path / "vocab.txt"
        run_cli(vocab_cli, "--corpus-dir", corpus, "--vocab-file", vocab_file,
                "--vocab-size", 200, "--lower-thresh", 2, *flags)
        assert "tokens to %s" % vocab_file in capsys.readouterr().out
        assert expect in vocab_file.read_text(encoding="utf-8").split("\n"), flags
    with pytest.raises(SystemExit, match="^error: Corpus directory not found: .*nope"):
        run_cli(vocab_cli, "--corpus-dir", tmp_path / "nope", "--vocab-file", vocab_file)


def test_forked_workers_of_the_command_write_what_spawned_ones_do(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", n_files=4)
    args = ["--max-seq-length", "32", "--num-processes", "2", "--num-out-files", "4",
            "--seed", "3", "--quiet"]
    process = python("-m", "pretrain_data.build_pretraining_dataset", "--corpus-dir",
                     str(corpus), "--vocab-file", VOCAB, "--output-dir", str(tmp_path / "cli"),
                     *args)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "4 files" in out
    build.build_pretraining_dataset(str(corpus), VOCAB, str(tmp_path / "lib"), max_seq_length=32,
                                    num_processes=2, num_out_files=4, seed=3, progress=False)
    names = sorted(os.listdir(tmp_path / "lib"))
    assert names == sorted(os.listdir(tmp_path / "cli")) and len(names) == 4
    for name in names:
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "lib" / name).read_bytes()


def test_interrupted_build_leaves_no_temporary_and_no_shard(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    line = " ".join(["the an re paul hello world cafe naive"] * 8) + "\n"
    (corpus / "big.txt").write_text(line * 60000, encoding="utf-8")  # ~19 MB: many seconds
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    process = python("-m", "pretrain_data.build_pretraining_dataset", "--corpus-dir",
                     str(corpus), "--vocab-file", VOCAB, "--output-dir", str(out),
                     "--num-out-files", "3", "--quiet")
    deadline = time.time() + 120
    while not any(n.startswith(".tmp-") for n in os.listdir(out)):
        assert process.poll() is None and time.time() < deadline, process.communicate()
        time.sleep(0.05)
    time.sleep(0.5)  # the build is writing its temporary shards
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode != 0
    assert os.listdir(out) == ["notes.txt"]
