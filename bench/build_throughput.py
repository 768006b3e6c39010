"""Throughput of the tokenizer alone and of the whole pretraining-data builder.

Generates a corpus of at least 20 MB (English-like text: the comments and docstrings of
the installed TensorFlow's Python files, as blank-line separated documents), then
prints tokens/s of:
  1. `FullTokenizer.tokenize_ids` alone, in graph mode, batches of 1,000 lines;
  2. the builder with 1 and with 2 processes, each run in a fresh Python process as a
     user would run it: end to end (TF import included) and after start-up.

First the CPU, the load and the matmul peaks (`--matmul-size`), as every benchmark prints
them. `--smoke`: a 0.1 MB corpus and a 256×256 peak matmul; it only checks the benchmark works.

Usage:
  python bench/build_throughput.py [--mb 20] [--vocab-file tests/fixtures/vocab_tiny.txt]
                                   [--matmul-size 4096] [--smoke]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import common  # bench/common.py: puts the repository on sys.path

import tensorflow as tf  # noqa: E402

from pretrain_data import tokenization  # noqa: E402

REPO = pathlib.Path(common.REPO)


def make_corpus(directory, megabytes, n_files=40):
    """Writes `n_files` files totalling >= `megabytes` MB; returns their lines."""
    source = pathlib.Path(tf.__file__).parent
    lines = []
    for path in sorted(source.rglob("*.py")):
        for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
            line = line.strip().lstrip("#").strip()
            lines.append(line if len(line) > 20 and not line.startswith(("import", "from")) else "")
    text_lines, size, i = [], 0, 0
    while size < megabytes * 1e6:
        line = lines[i % len(lines)]
        text_lines.append(line)
        size += len(line) + 1
        i += 1
    per_file = len(text_lines) // n_files + 1
    for f in range(n_files):
        chunk = text_lines[f * per_file:(f + 1) * per_file]
        (directory / ("part-%03d.txt" % f)).write_text("\n".join(chunk) + "\n", encoding="utf-8")
    return [l for l in text_lines if l]


def tokenizer_rate(vocab_file, lines, batch=1000):
    """Tokens/s of `tokenize_ids` (string tensor in, ragged ids out) and of
    `tokenize_lines` (the builder's call: Python str lines in, Python int lists out)."""
    tokenizer = tokenization.FullTokenizer(vocab_file)
    tensors = [tf.constant(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    tokenizer.tokenize_ids(tensors[0])  # trace
    start, tokens = time.time(), 0
    for b in tensors:
        tokens += int(tf.size(tokenizer.tokenize_ids(b).flat_values))
    ids_rate = tokens / (time.time() - start)
    tokenizer.tokenize_lines(lines[:batch], flat=True)  # trace
    start, tokens = time.time(), 0
    for i in range(0, len(lines), batch):
        tokens += len(tokenizer.tokenize_lines(lines[i:i + batch], flat=True)[0])
    return tokens, ids_rate, tokens / (time.time() - start)


# Forked workers, as the command line starts them (this process runs no TF op before).
_BUILD_SNIPPET = """
import dataclasses, json, sys
from pretrain_data import build
summary = build.build_pretraining_dataset(sys.argv[1], sys.argv[2], sys.argv[3],
                                          num_processes=int(sys.argv[4]), seed=0, progress=False,
                                          start_method="fork")
print(json.dumps({k: v for k, v in dataclasses.asdict(summary).items() if k != "shards"}))
"""


def run_builder_cli(corpus, vocab_file, output_dir, processes):
    """Runs the builder in a fresh Python process, as a user would; returns (summary, wall s)."""
    start = time.time()
    result = subprocess.run([sys.executable, "-c", _BUILD_SNIPPET, corpus, vocab_file, output_dir,
                             str(processes)],
                            check=True, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2"))
    seconds = time.time() - start
    return json.loads(result.stdout.strip().splitlines()[-1]), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--vocab-file", default=str(REPO / "tests/fixtures/vocab_tiny.txt"))
    common.add_matmul_size(parser)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.mb, args.matmul_size = 0.1, 256
    # No matmuls here; the machine's line and peaks, as every bench prints them, let runs compare.
    common.print_machine(common.PRECISIONS, args.matmul_size)
    load_before = " ".join(open("/proc/loadavg").read().split()[:3])
    with tempfile.TemporaryDirectory() as tmp:
        corpus = pathlib.Path(tmp) / "corpus"
        corpus.mkdir()
        lines = make_corpus(corpus, args.mb)
        mb = sum(p.stat().st_size for p in corpus.iterdir()) / 1e6
        print("corpus: %.1f MB, %d non-blank lines, vocab %s" % (mb, len(lines), args.vocab_file))
        tokens, ids_rate, base = tokenizer_rate(args.vocab_file, lines)
        print("tokenizer alone, batches of 1000 lines, %d tokens: tokenize_ids (graph, string "
              "tensor -> ragged ids) %.0f tokens/s; tokenize_lines (the builder's call, graph "
              "inside, Python lists out) %.0f tokens/s = the baseline below"
              % (tokens, ids_rate, base))
        rates, steady = {}, {}
        for processes in (1, 2):
            name = "%d process%s" % (processes, "es" if processes > 1 else "")
            out = os.path.join(tmp, "out%d" % processes)
            summary, seconds = run_builder_cli(str(corpus), args.vocab_file, out, processes)
            rates[name] = summary["tokens"] / seconds
            steady[name] = summary["tokens"] / summary["steady_seconds"]
            print("builder, %s: %d tokens, %d examples in %.1fs = %.0f tokens/s end to end "
                  "(fresh process, TF import included), %.0f tokens/s after start-up (%.1fs)"
                  % (name, summary["tokens"], summary["examples"], seconds, rates[name],
                     steady[name], summary["steady_seconds"]))
        one, two = "1 process", "2 processes"
        print("builder(1) / tokenizer = %.2f end to end, %.2f after start-up (target >= 0.70)"
              % (rates[one] / base, steady[one] / base))
        print("builder(2) / builder(1) = %.2f end to end, %.2f after start-up (target >= 1.70)"
              % (rates[two] / rates[one], steady[two] / steady[one]))
        print("load average before/after: %s / %s (other processes on the machine skew these)"
              % (load_before, " ".join(open("/proc/loadavg").read().split()[:3])))


if __name__ == "__main__":
    main()
