"""What the throughput benchmarks share: the matmul peak, step timing, precision, FLOPs.

MFU everywhere = model FLOPs per second, counted as the original `flops_computation.py`
does (`electra_tf/flops.py`: a matmul is 2·m·n, backward = forward), divided by the rate
of a large square matmul of the same dtype measured in the same run.
"""

import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # `python bench/<name>.py` puts bench/, not the repository, first
    sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import flops  # noqa: E402
from electra_tf.training.precision import cpu_flags, cpuinfo  # noqa: E402

PRECISIONS = ("float32", "mixed_bfloat16")
MATMUL_SIZE = 4096  # n of the n×n matmul whose rate is the peak
# The CPU flags that decide how fast the benchmarks can be (bfloat16 and int8 matmul units).
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
COMPUTE_DTYPES = {"float32": tf.float32, "mixed_bfloat16": tf.bfloat16}


def cpu_line():
    """The CPU model, which flags of `CPU_FLAGS` it has and lacks, and the cores this process
    may use."""
    flags = cpu_flags()
    present = [flag for flag in CPU_FLAGS if flag in flags]
    absent = [flag for flag in CPU_FLAGS if flag not in flags]
    return (f"{cpu_model()}, {cpu_cores()} cores, flags: "
            f"{' '.join(present) or 'none of CPU_FLAGS'}"
            + (f" (absent: {' '.join(absent)})" if absent else ""))


def cpu_model():
    """The CPU's model name (Linux `/proc/cpuinfo`; elsewhere what `platform` reports)."""
    return cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_cores():
    """The CPU cores this process may run on (its affinity, where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def matmul_rate(dtype, n=MATMUL_SIZE, repeats=10):
    """FLOP/s of an n×n by n×n matmul in `dtype` (best of `repeats`)."""
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    return 2 * n ** 3 / fastest_call(matmul, a, repeats)


def fastest_call(function, argument, repeats):
    """Seconds of the fastest of `repeats` calls `function(argument)` (its result fetched),
    after one untimed call (tracing)."""
    function(argument).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function(argument).numpy()
        best = min(best, time.perf_counter() - start)
    return best


def seconds_each(function, inputs, repeats):
    """Seconds of `function` on one input: one call maps it over all `inputs` (different
    inputs: the same computation repeated would be done once); the fastest of `repeats`
    such calls, less the fastest of the same call without `function` (its per-call and
    per-output cost), divided by the number of inputs.

    Args:
        function: a tensor → tensor function (e.g. one product with a fixed right operand).
        inputs: a list of tensors.
        repeats: timed calls of each kind.
    """
    def mapped(each):
        return tf.function(lambda xs: tf.add_n([tf.reshape(each(x), [-1])[0] for x in xs]))
    with_function = fastest_call(mapped(function), inputs, repeats)
    return max(with_function - fastest_call(mapped(lambda x: x), inputs, repeats),
               0.0) / len(inputs)


def matmul_peaks(precisions, n=MATMUL_SIZE, previous=None):
    """{precision: FLOP/s} of `matmul_rate` in each precision's compute dtype.

    Args:
        precisions: e.g. `PRECISIONS`.
        n: the matmul size.
        previous: an earlier measurement; each peak is then the larger of the two, so a
            measurement disturbed by other processes does not inflate the MFU.
    """
    previous = previous or {}
    return {p: max(matmul_rate(COMPUTE_DTYPES[p], n), previous.get(p, 0.0))
            for p in precisions}


def steps_per_second(step, steps, warmup=3, median=False):
    """Calls `step()` `warmup` times untimed (tracing, compilation), then `steps` times.

    Args:
        step: a function with no arguments returning a tensor (e.g. the loss), a nest of
            tensors, or host numbers (Keras' `train_on_batch`).
        steps: timed calls (≥ 1).
        warmup: untimed calls before.
        median: time each call on its own (waiting for its result) and use the median
            time, which a burst of load from other processes does not move; else the
            mean over all calls, only the last result fetched.
    Returns:
        Timed calls per second.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    for _ in range(warmup):
        _fetch(step())
    if median:
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            _fetch(step())
            times.append(time.perf_counter() - start)
        return 1.0 / float(np.median(times))
    start = time.perf_counter()
    for _ in range(steps):
        result = step()
    _fetch(result)
    return steps / (time.perf_counter() - start)


def _fetch(result):
    """Copies a tensor or a nest of tensors (or host numbers, already there) to the host,
    waiting for their computation."""
    return tf.nest.map_structure(np.asarray, result)


def encoder_flops(bert_config, embedding_size, seq_len):
    """Forward FLOPs of one sequence through the encoder alone (no pretraining head).

    Args:
        bert_config: an `electra_tf.config.BertConfig` (hidden size, layers, FFN, heads,
            vocabulary).
        embedding_size: E (None: the hidden size).
        seq_len: S.
    Returns:
        L·block + embeddings, as `flops.TransformerFlops` counts them (dense one-hot lookup).
    """
    t = flops.TransformerFlops(
        bert_config.hidden_size, bert_config.num_hidden_layers, s=seq_len,
        v=bert_config.vocab_size, e=embedding_size, i=bert_config.intermediate_size,
        heads=bert_config.num_attention_heads)
    return t.l * t.block() + t.embedding()


FIGURES_HEADER = f"{'GFLOP/seq':>9} {'seq/s':>7} {'MFU':>6} {'MFU vs own-dtype peak':>22}"


def figures(seqs, seq_flops, peaks, precision):
    """One row's figures, aligned under `FIGURES_HEADER`, and its MFU.

    Args:
        seqs: measured sequences per second.
        seq_flops: FLOPs of one sequence (training: forward and backward).
        peaks: `matmul_peaks` output; MFU is against the float32 peak, the last column
            against the peak of `precision`'s compute dtype.
    Returns:
        (text, MFU as a fraction).
    """
    mfu = seqs * seq_flops / peaks["float32"]
    own = seqs * seq_flops / peaks[precision]
    return (f"{seq_flops / 1e9:>9.2f} {seqs:>7.2f} {100 * mfu:>5.1f}% {100 * own:>21.1f}%",
            mfu)


def measure_table(keys, header, label, measure, peaks, matmul_size=MATMUL_SIZE, rounds=1):
    """Measures each row (a progress line each), `rounds` times in turn (so that a change of
    load touches every row alike; the best of each row kept), then the matmul peaks again
    (the larger of `peaks` and these is kept), and prints the peaks and the table.

    Args:
        keys: the rows, in order.
        header: the column titles of `label`.
        label: key → the row's leading columns.
        measure: key → (sequences/s, FLOPs per sequence, precision).
        peaks: the peaks measured before the rows (`print_machine`).
        matmul_size: n of the n×n peak matmul.
        rounds: how many times each row is measured.
    Returns:
        ({key: (sequences/s, MFU)}, peaks).
    """
    measured = {}
    for r in range(1, rounds + 1):
        for key in keys:
            row = measure(key)
            if key not in measured or row[0] > measured[key][0]:
                measured[key] = row
            print(("measured " if rounds == 1 else f"round {r}: measured ")
                  + f"{label(key).strip()}: {row[0]:.2f} seq/s", flush=True)
    peaks = print_peaks_again(peaks, matmul_size)
    print(f"{header} {FIGURES_HEADER}")
    rows = {}
    for key, (seqs, seq_flops, precision) in measured.items():
        text, mfu = figures(seqs, seq_flops, peaks, precision)
        rows[key] = (seqs, mfu)
        print(f"{label(key)} {text}")
    return rows, peaks


def load_line():
    """The 1-minute load average and the core count, to judge whether a run was quiet."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPU cores"


def print_peaks(peaks):
    for precision, peak in peaks.items():
        print(f"matmul peak {precision}: {peak / 1e9:.0f} GFLOP/s")


def print_peaks_again(peaks, matmul_size=MATMUL_SIZE):
    """Measures the peaks again after a run, prints the larger of each, and returns them."""
    peaks = matmul_peaks(list(peaks), matmul_size, previous=peaks)
    print("matmul peaks again, the larger kept:")
    print_peaks(peaks)
    return peaks


def print_machine(precisions=PRECISIONS, matmul_size=MATMUL_SIZE):
    """Prints what a run is to be compared by: `CPU: <cpu_line>; <load_line>` and the
    matmul peaks.

    Args:
        precisions: whose peaks to measure, e.g. `PRECISIONS`.
        matmul_size: n of the n×n peak matmul.
    Returns:
        The peaks, as `matmul_peaks` gives them.
    """
    print(f"CPU: {cpu_line()}; {load_line()}", flush=True)
    peaks = matmul_peaks(precisions, matmul_size)
    print_peaks(peaks)
    return peaks


def add_matmul_size(parser):
    """Adds `--matmul-size` (n of the n×n peak matmul) to an argparse parser."""
    parser.add_argument("--matmul-size", type=int, default=MATMUL_SIZE,
                        help="n of the n×n matmul whose rate is the peak")


def parse_list(parser, text, allowed, what):
    """Splits a comma-separated option value; an item not in `allowed` is a usage error
    (`parser.error`, exit status 2) naming the option."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items or any(x not in allowed for x in items):
        parser.error(f"--{what}: expected a comma-separated list of {', '.join(allowed)}, "
                     f"got {text!r}")
    return items


# Runs argv[1:] and prints its peak RSS (`wait4`'s ru_maxrss) as a last stdout line. A
# process inherits, at exec, the peak of the process it was forked from; started from this
# small one rather than from the benchmark (TensorFlow loaded, GBs of matmul operands), a
# measured process's peak is its own, within this launcher's ~10 MB.
LAUNCHER = ("import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:]); "
            "_, status, usage = os.wait4(p.pid, 0); print(usage.ru_maxrss, flush=True); "
            "sys.exit(os.waitstatus_to_exitcode(status))")


def run_process(command, what):
    """Runs `command` in a fresh process, through `LAUNCHER`.

    Returns:
        (its last stdout line, parsed as JSON; its peak resident set size in bytes).
    Raises:
        RuntimeError: naming `what`, with the end of its stderr, if it fails.
    """
    done = subprocess.run([sys.executable, "-c", LAUNCHER, *command], capture_output=True,
                          text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or len(lines) < 2:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{what} failed (exit {done.returncode}):\n{tail}")
    # Linux counts ru_maxrss in KiB, macOS in bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return json.loads(lines[-2]), int(lines[-1]) * scale
