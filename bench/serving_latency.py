"""Latency of an exported SavedModel: raw-text and id signatures beside the direct Keras call;
with `--batching`, latency against batch size and the TF Serving batching parameters it implies.

    python bench/serving_latency.py [--model-dir DIR | --classifier] [--batch-sizes 1,8,32]
                                    [--iterations 30] [--pytorch auto|on|off]
                                    [--pytorch-python PYTHON] [--matmul-size 4096] [--smoke]
    python bench/serving_latency.py --batching [--model-dir DIR] [--batch-sizes 1,2,...,64]
                                    [--latency-budget-ms MS] [--output FILE]
                                    [--matmul-size 4096] [--smoke]

By default a randomly initialised ELECTRA-Small (code defaults: H=256, 12 layers, generator
0.25, V=30522, S=128) with a generated 30,522-token vocabulary is written to a temporary
model directory and exported with `export_saved_model`; `--classifier` does the same for a
randomly initialised fine-tuned ELECTRA-Small SST classifier (S=128); `--model-dir` exports
a given pretraining or fine-tuned model directory instead. For each batch size, every input
filled to S tokens, it prints p50/p90/p99 latency and throughput of:
- `serving_default` (raw text in, tokenised in the graph),
- the ids signature (`discriminator_ids`, or the first task's `<task>_ids`),
- the direct Keras call (the same network and outputs under `tf.function`, the same ids),
and the ratio of each p50 to the direct call's, and beside them the time of the network's
dense products alone (every kernel's MatMul → BiasAdd at the batch's rows, each shape timed
on its own): what the network's other work and the graph's overhead add shows as the gap
to the direct call. Then, each in a fresh process: the first
call after `tf.saved_model.load` without warm-up, and after replaying the export's warm-up
records as TF Serving does at load time.

With `--classifier`, PyTorch `transformers`' ELECTRA-Small classifier of the same shapes is
timed too, before ours at each batch size, in a fresh process of the Python given by
`--pytorch-python` (`bench/pytorch_serving_latency.py`; by default the throwaway venv its
docstring builds, /tmp/torch-venv: PyTorch is no dependency of the project), and our ids
signature's p50 is given as a multiple of PyTorch's (`--pytorch auto`, the default: when
that Python has torch and transformers, and not with `--smoke`; `on` makes their absence,
or a run without `--classifier`, an error before anything is exported).

`--batching` (default model: the random SST classifier) times `serving_default` alone at
batch sizes 1, 2, 4, ..., 64, every text filled to S (the costliest batch TF Serving's
`BatchingSession` can form from them: it runs the merged requests as one call of the
signature), and derives `BatchingParameters` for `tensorflow_model_server --enable_batching
--batching_parameters_file=FILE` (`derive_batching_parameters`); `--output` writes them
with the measurements as comments. Both first print the CPU, the load and the matmul peaks
(`--matmul-size`). `--smoke`: a one-layer H=64 classifier, S=16, a few small batches and
calls, a 256×256 peak matmul, no fresh processes; it only checks that the benchmark works.
"""

import argparse
import ast
import collections
import os
import random
import re
import shutil
import string
import subprocess
import sys
import tempfile
import textwrap
import time

import common  # bench/common.py: puts the repository on sys.path (asserted below)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import checkpoints, config as config_lib  # noqa: E402
from electra_tf.models import build_models  # noqa: E402
from electra_tf.models.encoder import INPUT_NAMES  # noqa: E402
from electra_tf.serving import export as export_lib, warmup  # noqa: E402
from electra_tf.serving.text_encoder import TextEncoder  # noqa: E402
from finetune import model_dir as finetuned_dir, tasks as tasks_lib  # noqa: E402
from finetune.config import FinetuningConfig  # noqa: E402
from finetune.model import build_finetuning_model  # noqa: E402
from finetune.serving import task_endpoint  # noqa: E402
from pretrain_data.tokenization import FullTokenizer  # noqa: E402

assert common.REPO in sys.path

SPECIAL = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# `--smoke`: a classifier small enough for a seconds-long run (finetune_throughput's "tiny").
SMOKE_CLASSIFIER = {"vocab_size": 1000, "max_seq_length": 16,
                    "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 1}}
BATCHING_SIZES = "1,2,4,8,16,32,64"
DENSE_ALONE = "dense products alone"
PYTORCH = "PyTorch transformers"
PYTORCH_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "pytorch_serving_latency.py")
PYTORCH_PYTHON = "/tmp/torch-venv/bin/python"  # the venv the script's docstring builds
PYTORCH_TARGET = (1, 0.6)  # issue 16: at batch 1, at most 0.6x PyTorch's p50
# BatchingParameters fields that are `google.protobuf.Int64Value` wrappers
# (tensorflow_serving/servables/tensorflow/session_bundle_config.proto).
WRAPPED_FIELDS = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                  "num_batch_threads")


def write_vocab(path, size, seed=0):
    """A BERT-layout vocabulary: special tokens, characters, ##characters, random words."""
    rng = random.Random(seed)
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    tokens = SPECIAL + chars + ["##" + c for c in chars]
    words = set()
    while len(tokens) + len(words) < size:
        words.add("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))))
    tokens += sorted(words)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return tokens


def random_model_dir(root):
    """An ELECTRA-Small model directory (random weights) and its vocabulary in `root`."""
    config = config_lib.PretrainingConfig("electra-small-random", root)
    tokens = write_vocab(os.path.join(root, "vocab.txt"), config.vocab_size)
    checkpoints.save_model_dir(build_models(config), config.model_dir)
    return config.model_dir, tokens


def random_classifier_dir(root, **overrides):
    """A fine-tuned ELECTRA-Small SST classifier directory (random weights) in `root`.

    Args:
        root: the data directory (the vocabulary is written there).
        overrides: `FinetuningConfig` fields, e.g. `SMOKE_CLASSIFIER`.
    Returns:
        (model directory, vocabulary tokens).
    """
    config = FinetuningConfig("electra-small-random", root, task_names=["sst"],
                              init_checkpoint=None, **{"max_seq_length": 128, **overrides})
    tokens = write_vocab(config.vocab_file, config.vocab_size)
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file))
    directory = os.path.join(root, "sst_model_1")
    finetuned_dir.save(directory, config, build_finetuning_model(config, tasks), tasks)
    return directory, tokens


def direct_call(model_dir):
    """(ids signature name, the same outputs as a `tf.function` of the Keras model, S, the
    served Keras network)."""
    if os.path.exists(os.path.join(model_dir, finetuned_dir.CONFIG_FILE)):
        finetuned = finetuned_dir.load(model_dir)
        config, task = finetuned.config, finetuned.tasks[0]
        text_encoder = TextEncoder(finetuned.vocab_file, config.max_seq_length,
                                   config.do_lower_case)
        endpoint = task_endpoint(task, finetuned.model, text_encoder, config)
        return (f"{task.name}_ids", tf.function(endpoint.outputs), config.max_seq_length,
                finetuned.model)
    loaded = checkpoints.load_model_dir(model_dir)
    return ("discriminator_ids",
            tf.function(lambda features: loaded.discriminator(features, training=False)),
            loaded.config.max_seq_length, loaded.discriminator)


def dense_products(network):
    """{(in, out): count} of the network's dense kernels: the products of one call."""
    return collections.Counter(tuple(v.shape) for v in network.weights
                               if v.name == "kernel" and len(v.shape) == 2)


def dense_products_seconds(network, rows, calls=20, repeats=5):
    """Seconds of the network's dense products at `rows` rows, each shape timed on its own.

    Args:
        network: a Keras model; its compute dtype is the products'.
        rows: rows of every product (batch × S).
        calls: products per timed call (`common.seconds_each`).
        repeats: timed calls per shape.
    Returns:
        (seconds, number of products, FLOPs).
    """
    dtype = tf.as_dtype(network.dtype_policy.compute_dtype)
    seconds = flop = 0.0
    products = dense_products(network)
    for (width, units), count in products.items():
        inputs = [tf.cast(tf.random.normal([rows, width]), dtype) for _ in range(calls)]
        kernel = tf.cast(tf.random.normal([width, units]), dtype)
        bias = tf.zeros([units], dtype)
        best = common.seconds_each(
            lambda x, kernel=kernel, bias=bias: tf.nn.bias_add(tf.matmul(x, kernel), bias),
            inputs, repeats)
        seconds += count * best
        flop += count * 2.0 * rows * width * units
    return seconds, sum(products.values()), flop


def text_inputs(signature, texts):
    """The same texts for every string input of a raw-text signature."""
    return {name: texts for name in signature.structured_input_signature[1]}


def interleaved_percentiles(functions, iterations, warmup=3):
    """{name: (p50, p90, p99) seconds} of each function, called in turn `iterations` times.

    Taking turns spreads any change in the machine's load evenly over the functions.
    """
    times = {name: [] for name in functions}
    for i in range(warmup + iterations):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: np.percentile(t, [50, 90, 99]) for name, t in times.items()}


def fetch(outputs):
    """Makes sure every output is computed (the signatures run asynchronously)."""
    return [v.numpy() for v in outputs.values()]


def pytorch_available(args):
    """(whether PyTorch's classifier is measured, why not), as `--pytorch` says; on success
    `args.pytorch_python` becomes the interpreter's path (a command name is looked up).

    Raises:
        RuntimeError: `--pytorch on` and it cannot be.
    """
    ok, why = False, "--pytorch off"
    if args.pytorch == "off":
        return ok, why
    python = shutil.which(args.pytorch_python)
    if not args.classifier or args.model_dir or args.batching:
        why = ("only a --classifier run has PyTorch's shapes (the random ELECTRA-Small "
               "SST classifier, S=128)")
    elif args.smoke and args.pytorch == "auto":  # with `on`, against a tiny model of ours
        why = "--smoke"
    elif python is None:
        why = (f"{args.pytorch_python}: no such executable (see {PYTORCH_SCRIPT}'s docstring "
               "for the throwaway venv)")
    else:
        done = subprocess.run([python, "-c", "import torch, transformers"],
                              capture_output=True, text=True, check=False)
        lines = done.stderr.strip().splitlines()
        ok, why = done.returncode == 0, (lines[-1] if lines else
                                         f"{python}: `import torch, transformers` exited "
                                         f"{done.returncode}")
        args.pytorch_python = python
    if args.pytorch == "on" and not ok:
        raise RuntimeError(f"--pytorch on, but {PYTORCH} cannot be measured: {why}")
    return ok, why


def against_pytorch_line(ratios):
    """The closing line: {batch: our ids signature's p50 / PyTorch's}, with the target."""
    target_batch, target = PYTORCH_TARGET
    return f"ours (SavedModel ids) / {PYTORCH}, p50: " + ", ".join(
        f"batch {b} {r:.2f}x" + (f" (target ≤ {target}x: {'met' if r <= target else 'NOT met'})"
                                 if b == target_batch else "")
        for b, r in ratios.items())


def pytorch_percentiles(args, batch, seq_len):
    """(p50, p90, p99) seconds of PyTorch's classifier at `batch`, timed in a fresh process
    (`PYTORCH_SCRIPT --json` under `--pytorch-python`), and that process's peak RSS."""
    command = [args.pytorch_python, PYTORCH_SCRIPT, "--json", "--batch-sizes", str(batch),
               "--iterations", str(args.iterations), "--seq-len", str(seq_len)]
    result, rss = common.run_process(command, f"{PYTORCH} ({' '.join(command)})")
    if result.get("batch") != batch:
        raise RuntimeError(f"{PYTORCH_SCRIPT}: expected the figures of batch {batch}, "
                           f"got {result}")
    return np.array([result[f"p{q}_ms"] for q in (50, 90, 99)]) / 1000, rss


def latency_row(batch, name, percentiles, base_ms):
    """One table line: p50 / p90 / p99 ms, throughput at p50, p50 over `base_ms`."""
    p50, p90, p99 = (float(t) * 1000 for t in percentiles)
    return (f"batch {batch:>3}  {name:<20} {p50:8.1f} {p90:8.1f} {p99:8.1f}   "
            f"{batch / p50 * 1000:7.1f} seq/s   {p50 / base_ms:.2f}x")


def first_call(export_dir, replay_warmup):
    """Seconds of the first `serving_default` call after loading (optionally after warm-up)."""
    loaded = tf.saved_model.load(export_dir)
    if replay_warmup:
        for log in warmup.read_warmup_requests(export_dir):
            name, inputs = warmup.request_inputs(log)
            fetch(loaded.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()}))
    signature = loaded.signatures["serving_default"]
    inputs = text_inputs(signature, tf.constant(["a first request after loading the model ."]))
    start = time.perf_counter()
    fetch(signature(**inputs))
    return time.perf_counter() - start


def first_call_in_fresh_process(export_dir, replay_warmup):
    args = [sys.executable, __file__, "--first-call", export_dir]
    out = subprocess.run(args + (["--replay-warmup"] if replay_warmup else []),
                         capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def filled_texts(signature, words, batch, max_len, rng):
    """Raw-text inputs of `batch` texts of 2·S vocabulary words each: every text fills S."""
    return text_inputs(signature, tf.constant(
        [" ".join(rng.choices(words, k=2 * max_len)) for _ in range(batch)]))


def build_and_export(args, root, classifier):
    """Writes the benchmarked model directory (unless `--model-dir`) and exports it.

    Returns:
        (model directory, export directory, vocabulary words to fill texts with).
    """
    model_dir, tokens = args.model_dir, None
    if args.smoke:
        model_dir, tokens = random_classifier_dir(root, **SMOKE_CLASSIFIER)
    elif model_dir is None:
        model_dir, tokens = (random_classifier_dir if classifier else random_model_dir)(root)
    start = time.perf_counter()
    export_dir = export_lib.export_saved_model(model_dir, os.path.join(root, "export"))
    print(f"exported {model_dir} to {export_dir} in {time.perf_counter() - start:.1f} s")
    # Past the special tokens: the vocabulary's characters and words (write_vocab).
    return model_dir, export_dir, tokens[200:] if tokens else ["word"]


def run(args, root, with_pytorch):
    """Exports into `root` (and builds the random model there) and prints the figures; with
    PyTorch's classifier beside ours if `with_pytorch`.

    Returns:
        {batch size: our ids signature's p50 / PyTorch's} (empty without PyTorch).
    """
    model_dir, export_dir, words = build_and_export(args, root, args.classifier)
    ids_name, keras_call, max_len, network = direct_call(model_dir)
    served = tf.saved_model.load(export_dir)
    text_signature = served.signatures["serving_default"]
    ids_signature = served.signatures[ids_name]
    rng = random.Random(1)
    print(f"{os.cpu_count()} CPU cores, S={max_len}, {args.iterations} timed calls each; "
          f"latency in ms (p50 / p90 / p99), throughput at p50; ids signature {ids_name}")
    against_pytorch = {}
    for batch in args.batch_sizes:
        texts = filled_texts(text_signature, words, batch, max_len, rng)
        features = {k: v for k, v in text_signature(**texts).items()
                    if k in INPUT_NAMES}
        assert features["input_ids"].shape == (batch, max_len), features["input_ids"].shape
        if with_pytorch:
            pytorch, rss = pytorch_percentiles(args, batch, max_len)
        rows = {"direct Keras call": lambda: fetch(keras_call(features)),
                "SavedModel ids": lambda: fetch(ids_signature(**features)),
                "SavedModel raw text": lambda: fetch(text_signature(**texts))}
        results = interleaved_percentiles(rows, args.iterations)
        base = results["direct Keras call"][0] * 1000
        for name, percentiles in results.items():
            print(latency_row(batch, name, percentiles, base))
        if with_pytorch:
            print(latency_row(batch, PYTORCH, pytorch, base)
                  + f"   (a fresh process before ours; peak RSS {rss / 2**30:.2f} GB)")
            against_pytorch[batch] = results["SavedModel ids"][0] / pytorch[0]
        seconds, count, flop = dense_products_seconds(network, batch * max_len)
        print(f"batch {batch:>3}  {DENSE_ALONE:<20} {seconds * 1000:8.1f}   ({count} "
              f"MatMul → BiasAdd of {batch * max_len} rows, each shape timed alone: "
              f"{flop / max(seconds, 1e-9) / 1e9:.0f} GFLOP/s; {seconds * 1000 / base:.2f}x the "
              f"direct call)")
    if against_pytorch:
        print(against_pytorch_line(against_pytorch))
    if not args.smoke:  # the fresh processes take longer than the rest of a smoke run
        for replay in (False, True):
            seconds = first_call_in_fresh_process(export_dir, replay)
            print(f"first call after loading, {'after' if replay else 'without'} warm-up: "
                  f"{seconds * 1000:.0f} ms")
    return against_pytorch


def derive_batching_parameters(p50_ms, cpu_cores, throughput_tolerance=0.1,
                               timeout_fraction=0.1, latency_budget_ms=None):
    """TF Serving `BatchingParameters` from a latency-against-batch-size curve.

    Args:
        p50_ms: {batch size: median latency in ms of one call of the served signature on a
            batch that size}; must include batch size 1.
        cpu_cores: cores the server may use.
        throughput_tolerance: `max_batch_size` is the smallest measured size whose
            throughput (batch / latency) is within this fraction of the best measured.
        timeout_fraction: `batch_timeout_micros` is this fraction of the batch-1 latency.
        latency_budget_ms: if given, only sizes whose latency is within it are candidates.
    Returns:
        ({field: value} in `BatchingParameters`' field names and order, {field: why}).
    """
    if 1 not in p50_ms:
        raise ValueError(f"p50_ms: expected the latency of batch size 1 (a lone request), "
                         f"got batch sizes {sorted(p50_ms)}")
    if any(b < 1 or ms <= 0 for b, ms in p50_ms.items()):
        raise ValueError(f"p50_ms: expected positive batch sizes and latencies, got {p50_ms}")
    if cpu_cores < 1:
        raise ValueError(f"cpu_cores: expected >= 1, got {cpu_cores}")
    sizes = sorted(p50_ms)
    candidates = [b for b in sizes if latency_budget_ms is None or p50_ms[b] <= latency_budget_ms]
    if not candidates:
        raise ValueError(f"latency_budget_ms={latency_budget_ms}: even a lone request takes "
                         f"{p50_ms[1]} ms")
    throughput = {b: b / p50_ms[b] * 1000 for b in candidates}
    best = max(candidates, key=throughput.get)
    max_batch = min(b for b in candidates
                    if throughput[b] >= (1 - throughput_tolerance) * throughput[best])
    timeout = int(round(timeout_fraction * p50_ms[1] * 1000, -2))  # 100 µs steps
    budget = "" if latency_budget_ms is None else f" within {latency_budget_ms} ms"
    params = {"max_batch_size": max_batch, "batch_timeout_micros": timeout,
              "max_enqueued_batches": cpu_cores, "num_batch_threads": cpu_cores,
              "allowed_batch_sizes": [b for b in sizes if b <= max_batch],
              "pad_variable_length_inputs": False}
    why = {
        "max_batch_size":
            f"batch {best} gives the most throughput measured{budget} "
            f"({throughput[best]:.1f} seq/s); {max_batch} is the smallest batch within "
            f"{throughput_tolerance:.0%} of it ({throughput[max_batch]:.1f} seq/s, "
            f"{p50_ms[max_batch]} ms): larger batches add latency for little throughput",
        "batch_timeout_micros":
            f"{timeout_fraction:.0%} of a lone request's {p50_ms[1]} ms: the longest a "
            "request waits for others to join its batch, so waiting never dominates",
        "max_enqueued_batches":
            "= num_batch_threads (the batching guide's advice for online serving): a request "
            "waits behind at most one queued batch per thread (a full one takes "
            f"{p50_ms[max_batch]} ms); beyond that the server refuses it rather than "
            "building a backlog",
        "num_batch_threads":
            f"the CPU cores ({cpu_cores}), as the batching guide advises for CPU-only serving",
        "allowed_batch_sizes":
            "the measured sizes up to max_batch_size: a batch is padded up to the next one "
            "(with copies of a request), so every batch the server runs is one measured here",
        "pad_variable_length_inputs":
            "false: raw-text inputs are string [B], nothing to pad (the graph pads the merged "
            "batch to its longest text with [PAD], input_mask 0); for the ids signatures "
            "the server would pad with each tensor's first element (the [CLS] id, "
            "input_mask 1), attending to the padding and changing the outputs; false "
            "refuses a batch of unequal S instead, so send ids padded to max_seq_length"}
    return params, why


def text_proto(params):
    """`params` (from `derive_batching_parameters`) as a text-format BatchingParameters."""
    lines = []
    for name, value in params.items():
        if name in WRAPPED_FIELDS:
            lines.append(f"{name} {{ value: {value} }}")
        elif isinstance(value, bool):
            lines.append(f"{name}: {str(value).lower()}")
        elif isinstance(value, list):
            lines += [f"{name}: {v}" for v in value]
        else:
            raise ValueError(f"params[{name!r}]: expected a wrapped int64, a bool or a list, "
                             f"got {value!r}")
    return "\n".join(lines) + "\n"


TABLE_HEADER = "   batch   p50 ms   p90 ms   p99 ms    seq/s"
DERIVATION = re.compile(r"^# derive_batching_parameters\(p50_ms, (.*)\)$", re.M)
TABLE_ROW = re.compile(r"^#\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+$", re.M)


def table_lines(percentiles_ms):
    """{batch: (p50, p90, p99) ms} as lines under `TABLE_HEADER`, with throughput at p50."""
    return [f"   {b:>5} {p50:8.1f} {p90:8.1f} {p99:8.1f} {b / p50 * 1000:8.1f}"
            for b, (p50, p90, p99) in sorted(percentiles_ms.items())]


def config_file_text(percentiles_ms, options, command, machine, what):
    """The batching parameters file: the measurements and the rules as `#` comments.

    Args:
        percentiles_ms: {batch size: (p50, p90, p99) ms}, p50 rounded to 0.1 ms (the
            derivation reads the same numbers as the file shows).
        options: the keyword arguments of `derive_batching_parameters` besides p50_ms.
        command: the command line that measured them.
        machine: `common.cpu_line()` and the load.
        what: the model and signature measured.
    Returns:
        The file's text; `read_derivation` recovers p50_ms and options from it.
    """
    params, why = derive_batching_parameters(
        {b: p[0] for b, p in percentiles_ms.items()}, **options)
    arguments = ", ".join(f"{k}={v!r}" for k, v in options.items())
    lines = [
        "TF Serving batching parameters (text-format BatchingParameters) for:",
        f"  {what}",
        "Use: tensorflow_model_server --enable_batching "
        "--batching_parameters_file=<this file> ...",
        f"Measured by: {command}",
        f"Machine: {machine}",
        "Latency of one call of serving_default on a batch, every text filled to S:",
        TABLE_HEADER, *table_lines(percentiles_ms),
        "Derived from the p50 column (bench/serving_latency.py) by",
        f"derive_batching_parameters(p50_ms, {arguments})",
        "To adapt: re-run the command on the serving machine (add --model-dir for your model,",
        "--latency-budget-ms for a latency target). The rules: num_batch_threads = cores;",
        "max_enqueued_batches = num_batch_threads; max_batch_size = the smallest batch within",
        "the tolerance of the best throughput (within the budget); batch_timeout_micros = a",
        "fraction of the batch-1 latency; allowed_batch_sizes = the measured sizes up to",
        "max_batch_size (remove them all to run any size, unpadded); shorter texts make every",
        "latency smaller, so these numbers are the worst case.",
        ""]
    out = [wrapped for line in lines for wrapped in textwrap.wrap(
        line, 90, initial_indent="# ", subsequent_indent="#     ") or ["#"]]
    for line in text_proto(params).splitlines():
        name = line.split()[0].rstrip(":")
        if name in why:  # the reason once, above the field's first line
            out += textwrap.wrap(f"{name}: {why.pop(name)}", 90, initial_indent="# ",
                                 subsequent_indent="#   ")
        out.append(line)
    return "\n".join(out) + "\n"


def read_derivation(text):
    """(p50_ms, options) that `config_file_text` wrote into a batching parameters file."""
    call = DERIVATION.search(text)
    rows = TABLE_ROW.findall(text)
    if not call or not rows:
        raise ValueError("expected a batching parameters file written by "
                         "bench/serving_latency.py --batching --output (its table and "
                         "derive_batching_parameters line)")
    options = {k: ast.literal_eval(v) for k, v in
               re.findall(r"(\w+)=([^,]+)", call.group(1))}
    return {int(b): float(ms) for b, ms in rows}, options


def run_batching(args, root):
    """Times `serving_default` against batch size, prints the table and the parameters."""
    model_dir, export_dir, words = build_and_export(args, root, classifier=True)
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    max_len = direct_call(model_dir)[2]
    rng = random.Random(1)
    calls = {b: (lambda texts: lambda: fetch(signature(**texts)))(
        filled_texts(signature, words, b, max_len, rng)) for b in args.batch_sizes}
    print(f"serving_default of {model_dir}, S={max_len}, {args.iterations} timed calls per "
          "batch size, interleaved")
    results = interleaved_percentiles(calls, args.iterations)
    percentiles_ms = {b: tuple(round(float(t) * 1000, 1) for t in p)
                      for b, p in results.items()}
    print(TABLE_HEADER)
    print("\n".join(table_lines(percentiles_ms)))
    options = {"cpu_cores": common.cpu_cores(), "latency_budget_ms": args.latency_budget_ms}
    params, why = derive_batching_parameters(
        {b: p[0] for b, p in percentiles_ms.items()}, **options)
    for name, reason in why.items():
        print(f"{name}: {reason}")
    print(text_proto(params), end="")
    if args.output:
        model = args.model_dir or "a random ELECTRA-Small SST classifier"
        what = f"serving_default (raw text) of the export of {model}, S={max_len}"
        text = config_file_text(percentiles_ms, options,
                                "python bench/serving_latency.py " + " ".join(args.argv),
                                f"{common.cpu_line()}; {common.load_line()} at the end", what)
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output}")
    return params


def parse_args(argv=None):
    """The options; `--smoke` sets the tiny model, a few batch sizes and calls."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="export this model directory (pretraining or "
                        "fine-tuned) instead of a random ELECTRA-Small")
    parser.add_argument("--classifier", action="store_true", help="a random fine-tuned "
                        "ELECTRA-Small SST classifier instead of the pretraining model")
    parser.add_argument("--batching", action="store_true", help="latency against batch size "
                        "of serving_default, and the TF Serving batching parameters from it")
    parser.add_argument("--batch-sizes", help=f"comma-separated (default 1,8,32; with "
                        f"--batching {BATCHING_SIZES})")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--pytorch", default="auto", choices=("auto", "on", "off"),
                        help="--classifier: time PyTorch transformers' ELECTRA-Small "
                             "classifier too (auto: when --pytorch-python has it, and not "
                             "with --smoke)")
    parser.add_argument("--pytorch-python", default=PYTORCH_PYTHON,
                        help=f"a Python with torch and transformers (default {PYTORCH_PYTHON})")
    parser.add_argument("--latency-budget-ms", type=float, help="--batching: the largest "
                        "batch latency a request may see")
    parser.add_argument("--output", help="--batching: write the parameters file here")
    common.add_matmul_size(parser)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (one-layer "
                        "classifier, S=16) that only checks the benchmark works")
    parser.add_argument("--first-call", help=argparse.SUPPRESS)  # the fresh-process part
    parser.add_argument("--replay-warmup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    if args.smoke:
        args.iterations, args.matmul_size = 2, 256
        args.batch_sizes = args.batch_sizes or "1,2,4"
    sizes = args.batch_sizes or (BATCHING_SIZES if args.batching else "1,8,32")
    try:
        args.batch_sizes = [int(b) for b in sizes.split(",")]
    except ValueError:
        parser.error(f"--batch-sizes: expected comma-separated integers, got {sizes!r}")
    if min(args.batch_sizes) < 1 or (args.batching and 1 not in args.batch_sizes):
        parser.error(f"--batch-sizes: expected sizes >= 1 (with --batching including 1), "
                     f"got {sizes!r}")
    return args


def main(argv=None):
    """Runs the benchmark; returns the derived parameters with `--batching`, else `run`'s
    ratios to PyTorch."""
    args = parse_args(argv)
    if args.first_call:
        print(first_call(args.first_call, args.replay_warmup))
        return None
    with_pytorch, why = pytorch_available(args)  # before any work: `on` may fail
    common.print_machine(common.PRECISIONS, args.matmul_size)
    if not with_pytorch and not args.batching:
        print(f"{PYTORCH}: not measured ({why})")
    root = tempfile.mkdtemp(prefix="serving-latency-")
    try:
        return run_batching(args, root) if args.batching else run(args, root, with_pytorch)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
