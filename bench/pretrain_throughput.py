"""Pretraining throughput, MFU and peak memory of ELECTRA, side by side with the original.

    python bench/pretrain_throughput.py [--model small] [--batch-size 16] [--seq-len 128]
        [--precisions float32,mixed_bfloat16] [--jit-compile false] [--rounds 2]
        [--steps 20] [--warmup 3] [--original auto|on|off] [--original-tools DIR]
        [--data-dir DIR] [--matmul-size 4096]
    python bench/pretrain_throughput.py --model base   # S=512, batch 4: Base's peak RSS
    python bench/pretrain_throughput.py --smoke        # seconds: a one-layer model, no original

Both sides train on the same TFRecords: `--data-dir`'s `pretrain_tfrecords/`, written first
if there are none (4 × 256 full-length two-segment records of random ids, and a stand-in
vocabulary with BERT's special-token ids). Every round runs each configuration in a fresh
process, in this order: the original TF1 code (float32; the original's measurement tools
`bench_original.py` and `orig_electra_env`, which builds a TF 2.21 + tf_keras environment
under /tmp, from `--original-tools DIR`, default `shared/tools` beside the repository; used
only to measure, when they are available), then ours in each precision — the loop
`run_pretraining` runs (`Pretrainer`: input pipeline, masking, generator, sampling,
discriminator, backward, AdamWeightDecay with the global clip). Rounds interleave the
configurations so that a change of machine load touches all of them alike.

Printed: the CPU (model, AVX-512 / bfloat16 / AMX flags) with the load, the float32 and
bfloat16 matmul peaks, seq/s of each process, then per configuration the best seq/s, MFU (the
step's training FLOPs counted as the original's `flops_computation.py` does, per second,
over the float32 peak and over the peak of its own compute dtype), the largest peak RSS
of its processes, and ours / original.
"""

import argparse
import dataclasses
import glob
import itertools
import json
import os
import sys
import tempfile
import time

import common  # bench/common.py: puts the repository on sys.path
import original

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_common import files  # noqa: E402
from electra_tf import config as config_lib, flops  # noqa: E402
from electra_tf.pretraining import helpers  # noqa: E402
from pretrain_data.examples import ExampleSerializer  # noqa: E402

# Model sizes: PretrainingConfig fields, default batch, default S. "tiny" is for --smoke.
MODELS = {
    "small": ({"model_size": "small"}, 16, 128),
    "base": ({"model_size": "base"}, 4, 512),
    "tiny": ({"model_size": "small", "vocab_size": 1000,
              "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 1}}, 2, 32),
}
RECORD_FILES, RECORDS_PER_FILE = 4, 256


@dataclasses.dataclass(frozen=True)
class Ours:
    """One configuration of ours: a precision and whether the step is XLA-compiled."""
    precision: str
    jit_compile: bool

    def __str__(self):
        return f"ours {self.precision}" + (" jit" if self.jit_compile else "")


def bench_config(args, ours):
    """The `PretrainingConfig` of a configuration (code defaults otherwise)."""
    fields, _, _ = MODELS[args.model]
    return config_lib.PretrainingConfig(
        "bench", args.data_dir, train_batch_size=args.batch_size,
        max_seq_length=args.seq_len, precision=ours.precision,
        jit_compile=ours.jit_compile, seed=0, **fields)


def train_flops_per_sequence(config):
    """Generator plus discriminator training FLOPs of one sequence (the original's count)."""
    bert = config_lib.get_bert_config(config)
    gen = config_lib.get_generator_config(config, bert)
    return flops.electra_train_flops(
        bert.hidden_size, bert.num_hidden_layers, gen.hidden_size, gen.num_hidden_layers,
        1, 1, not config.untied_generator_embeddings,
        e=config_lib.embedding_size(config, bert), s=config.max_seq_length,
        v=bert.vocab_size)


def write_records(config, seed=0):
    """Writes `config.vocab_file` and the records `config.pretrain_tfrecords` names, unless
    records are there already.

    Each record is full length, `[CLS] A [SEP] B [SEP]`, the first [SEP] at a random
    position in [min(10, S/4), S-10) (as the original's bench writes them), ids uniform over the
    non-special tokens, `input_mask` all 1. The vocabulary has BERT's special tokens at
    their ids (the original's masking reads [CLS], [SEP], [MASK] from it) and fillers.

    Returns:
        True if it wrote the records.
    """
    if glob.glob(config.pretrain_tfrecords):
        return False
    s, v = config.max_seq_length, config.vocab_size
    special = {i: t for t, i in helpers.SPECIAL_IDS.items()}
    first_word = max(special) + 1
    files.write_text(config.vocab_file, "".join(
        special.get(i, f"[unused{i - 1}]" if i < first_word else f"tok{i}") + "\n"
        for i in range(v)))
    serializer = ExampleSerializer(helpers.SPECIAL_IDS["[CLS]"],
                                   helpers.SPECIAL_IDS["[SEP]"], s, v)
    rng = np.random.default_rng(seed)
    low = min(10, max(1, s // 4))
    directory = os.path.dirname(config.pretrain_tfrecords)
    for k in range(RECORD_FILES):
        ids = rng.integers(first_word, v, (RECORDS_PER_FILE, s - 3)).tolist()
        cuts = rng.integers(low, max(low + 1, s - 10), RECORDS_PER_FILE)
        path = os.path.join(directory, f"pretrain_data.tfrecord-{k}-of-{RECORD_FILES}")
        with files.atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
            # [CLS] at 0, A up to the [SEP] at the cut, B up to the [SEP] at S-1.
            for record in serializer.serialize_batch(
                    [(row[:cut - 1], row[cut - 1:]) for row, cut in zip(ids, cuts)]):
                writer.write(record)
    return True


def pretraining_rate(config, steps, warmup):
    """Sequences per second of `Pretrainer`'s training loop, in this process.

    One loop call of `warmup` steps (tracing), then one of `steps` steps is timed, as
    `Pretrainer.train` runs a chunk of `iterations_per_loop` steps.
    """
    from electra_tf.pretraining.trainer import Pretrainer  # noqa: PLC0415 (child only)

    trainer = Pretrainer(config, log=lambda line: print(line, file=sys.stderr))
    iterator = trainer.input_iterator(config.train_batch_size, trainer.run_seed)
    return config.train_batch_size / step_seconds(trainer, iterator, steps, warmup)


def step_seconds(trainer, iterator, steps, warmup):
    """Seconds per step of the trainer's loop (the loop `Pretrainer.train` runs, untouched):
    one call of `warmup` steps (tracing), then one of `steps` steps timed."""
    train_loop = trainer.make_train_loop()
    float(train_loop(iterator, tf.constant(warmup))["loss"])
    start = time.perf_counter()
    float(train_loop(iterator, tf.constant(steps))["loss"])
    return (time.perf_counter() - start) / steps


def measure_ours(args, ours):
    """(seq/s, peak RSS) of one configuration of ours, in a fresh process."""
    command = [sys.executable, os.path.abspath(__file__), "--run-one",
               f"{ours.precision}:{str(ours.jit_compile).lower()}",
               *(f"--{k}={v}" for k, v in (("model", args.model),
                                           ("batch-size", args.batch_size),
                                           ("seq-len", args.seq_len), ("steps", args.steps),
                                           ("warmup", args.warmup),
                                           ("data-dir", args.data_dir)))]
    result, rss = common.run_process(command, str(ours))
    return result["seq_per_s"], rss


def measure_original(args, config):
    """(seq/s, peak RSS) of the original's training step on the same records, in a fresh
    process; the model, generator size, batch and S of `config`."""
    command = [sys.executable, os.path.join(args.original_tools, "bench_original.py"),
               "--data-dir", args.data_dir, "--batch-size", str(args.batch_size),
               "--max-seq-length", str(args.seq_len),
               "--generator-hidden-size", str(config.generator_hidden_size),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--repeats", "1",
               "--loss-steps", "0", "--seed", "0",
               "--hparams", json.dumps({"model_size": config.model_size})]
    result, rss = common.run_process(command, original.NAME)
    if result["data"] != "existing":  # it wrote its own records: not the same data
        raise RuntimeError(f"{original.NAME} did not read the records in {args.data_dir}")
    return result["repeats"][0], rss


def summarize(rounds):
    """The best of each configuration's rounds and its ratio to the original.

    Args:
        rounds: {configuration: [(seq/s, peak RSS bytes) of each round]}.
    Returns:
        {configuration: (best seq/s, largest peak RSS, best / original's best or None)}.
    """
    best = {name: (max(s for s, _ in runs), max(r for _, r in runs))
            for name, runs in rounds.items()}
    reference = best.get(original.NAME, (None,))[0]
    return {name: (seqs, rss, seqs / reference if reference else None)
            for name, (seqs, rss) in best.items()}


def print_summary(summary, args, seq_flops, peaks):
    """The table of `summarize`'s output, with MFU and the ratios to the original."""
    print(f"best of {args.rounds} round(s), {args.model}, S={args.seq_len}, "
          f"batch {args.batch_size}:")
    print(f"{'configuration':<24} {common.FIGURES_HEADER} {'peak RSS':>9} {'vs original':>11}")
    for name, (seqs, rss, ratio) in summary.items():
        precision = name.precision if isinstance(name, Ours) else "float32"
        text, _ = common.figures(seqs, seq_flops, peaks, precision)
        print(f"{str(name):<24} {text} {rss / 2**30:>7.2f}GB "
              f"{'' if ratio is None else f'{ratio:.2f}x':>11}")
    if any(ratio for _, _, ratio in summary.values()):
        print("ours / original (best of each): " + ", ".join(
            f"{name} {ratio:.2f}x" for name, (_, _, ratio) in summary.items()
            if isinstance(name, Ours)))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="small", choices=list(MODELS),
                        help="small (S=128, batch 16), base (S=512, batch 4), tiny")
    parser.add_argument("--batch-size", type=int, help="default: by --model")
    parser.add_argument("--seq-len", type=int, help="default: by --model")
    parser.add_argument("--precisions", default=",".join(common.PRECISIONS))
    parser.add_argument("--jit-compile", default="false", help="comma-separated: false, true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    original.add_options(parser)
    parser.add_argument("--data-dir", help="where the records are (written if absent); "
                        "default: a folder under the temporary directory named by S and V")
    common.add_matmul_size(parser)
    parser.add_argument("--smoke", action="store_true",
                        help="a seconds-long run: tiny model, float32, one round, one step, "
                             "no original")
    parser.add_argument("--run-one", metavar="PRECISION:JIT", help="measure one "
                        "configuration of ours in this process and print it as JSON "
                        "(what each round runs in a fresh process)")
    args = parser.parse_args(argv)
    if args.smoke:
        vars(args).update(model="tiny", precisions="float32", rounds=1, steps=1, warmup=1,
                          original="off", matmul_size=256)
    if args.model == "tiny" and args.original == "on":
        parser.error("--original on: the original has no tiny model (use --model small "
                     "or base)")
    _, batch_size, seq_len = MODELS[args.model]
    args.batch_size = args.batch_size or batch_size
    args.seq_len = args.seq_len or seq_len
    if min(args.rounds, args.steps, args.warmup) < 1:
        parser.error("--rounds, --steps and --warmup must be >= 1")
    args.precisions = common.parse_list(parser, args.precisions, common.PRECISIONS,
                                        "precisions")
    jit = common.parse_list(parser, args.jit_compile, ["false", "true"], "jit-compile")
    args.ours = [Ours(p, j == "true") for p, j in itertools.product(args.precisions, jit)]
    args.data_dir = args.data_dir or default_data_dir(args)
    return args


def default_data_dir(args):
    """The records' default folder: under the temporary directory, named by S and V."""
    vocab = MODELS[args.model][0].get("vocab_size", 30522)
    return os.path.join(tempfile.gettempdir(),
                        f"electra_pretrain_bench_s{args.seq_len}_v{vocab}")


def main(argv=None):
    """Runs the benchmark as `parse_args(argv)` says.

    Returns:
        `summarize`'s output; for `--run-one`, the seq/s of that one configuration.
    """
    args = parse_args(argv)
    if args.run_one:
        precision, _, jit = args.run_one.partition(":")
        seqs = pretraining_rate(bench_config(args, Ours(precision, jit == "true")),
                                args.steps, args.warmup)
        print(json.dumps({"seq_per_s": seqs}), flush=True)
        return seqs
    config = bench_config(args, args.ours[0])
    seq_flops = train_flops_per_sequence(config)
    peaks = common.print_machine(common.PRECISIONS, args.matmul_size)
    print(f"ELECTRA {args.model} (generator {config.generator_hidden_size}), "
          f"S={args.seq_len}, batch {args.batch_size}: {seq_flops / 1e9:.2f} GFLOP per "
          f"sequence and training step (the original's count)")
    wrote = write_records(config)
    print(f"data: {config.pretrain_tfrecords} ({'written now' if wrote else 'existing'}), "
          f"read by every configuration")
    available, why = original.available(args)
    if not available:
        print(f"original TF1 code: not measured ({why}); ours only")
    rounds = {name: [] for name in ([original.NAME] if available else []) + args.ours}
    for r in range(1, args.rounds + 1):
        for name in rounds:
            seqs, rss = (measure_original(args, config) if name == original.NAME
                         else measure_ours(args, name))
            rounds[name].append((seqs, rss))
            print(f"round {r}: {str(name):<24} {seqs:7.2f} seq/s  peak RSS "
                  f"{rss / 2**30:.2f} GB", flush=True)
    peaks = common.print_peaks_again(peaks, args.matmul_size)
    summary = summarize(rounds)
    print_summary(summary, args, seq_flops, peaks)
    print(f"done; {common.load_line()}")
    return summary


if __name__ == "__main__":
    main()
