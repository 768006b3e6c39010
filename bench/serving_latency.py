"""Latency of an exported SavedModel: raw-text and id signatures beside the direct Keras call.

    python bench/serving_latency.py [--model-dir DIR | --classifier] [--batch-sizes 1,8,32]
                                    [--iterations 30]

By default a randomly initialised ELECTRA-Small (code defaults: H=256, 12 layers, generator
0.25, V=30522, S=128) with a generated 30,522-token vocabulary is written to a temporary
model directory and exported with `export_saved_model`; `--classifier` does the same for a
randomly initialised fine-tuned ELECTRA-Small SST classifier (S=128); `--model-dir` exports
a given pretraining or fine-tuned model directory instead. For each batch size, every input
filled to S tokens, it prints p50/p90/p99 latency and throughput of:
- `serving_default` (raw text in, tokenised in the graph),
- the ids signature (`discriminator_ids`, or the first task's `<task>_ids`),
- the direct Keras call (the same network and outputs under `tf.function`, the same ids),
and the ratio of each p50 to the direct call's. Then, each in a fresh process: the first
call after `tf.saved_model.load` without warm-up, and after replaying the export's warm-up
records as TF Serving does at load time.
"""

import argparse
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
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


def random_classifier_dir(root):
    """A fine-tuned ELECTRA-Small SST classifier directory (random weights) in `root`."""
    config = FinetuningConfig("electra-small-random", root, task_names=["sst"],
                              max_seq_length=128, init_checkpoint=None)
    tokens = write_vocab(config.vocab_file, config.vocab_size)
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file))
    directory = os.path.join(root, "sst_model_1")
    finetuned_dir.save(directory, config, build_finetuning_model(config, tasks), tasks)
    return directory, tokens


def direct_call(model_dir):
    """(ids signature name, the same outputs as a `tf.function` of the Keras model, S)."""
    if os.path.exists(os.path.join(model_dir, finetuned_dir.CONFIG_FILE)):
        finetuned = finetuned_dir.load(model_dir)
        config, task = finetuned.config, finetuned.tasks[0]
        text_encoder = TextEncoder(finetuned.vocab_file, config.max_seq_length,
                                   config.do_lower_case)
        endpoint = task_endpoint(task, finetuned.model, text_encoder, config)
        return f"{task.name}_ids", tf.function(endpoint.outputs), config.max_seq_length
    loaded = checkpoints.load_model_dir(model_dir)
    return ("discriminator_ids",
            tf.function(lambda features: loaded.discriminator(features, training=False)),
            loaded.config.max_seq_length)


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


def first_call(export_dir, replay_warmup):
    """Seconds of the first `serving_default` call after loading (optionally after warm-up)."""
    loaded = tf.saved_model.load(export_dir)
    if replay_warmup:
        for name, inputs in warmup.read_warmup_requests(export_dir):
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


def run(args, root):
    """Exports into `root` (and builds the random model there) and prints the figures."""
    model_dir, tokens = args.model_dir, None
    if model_dir is None:
        model_dir, tokens = (random_classifier_dir if args.classifier else random_model_dir)(root)
    start = time.perf_counter()
    export_dir = export_lib.export_saved_model(model_dir, os.path.join(root, "export"))
    print(f"exported {model_dir} to {export_dir} in {time.perf_counter() - start:.1f} s")
    ids_name, keras_call, max_len = direct_call(model_dir)
    served = tf.saved_model.load(export_dir)
    text_signature = served.signatures["serving_default"]
    ids_signature = served.signatures[ids_name]
    words = tokens[200:] if tokens else ["word"]
    rng = random.Random(1)
    print(f"{os.cpu_count()} CPU cores, S={max_len}, {args.iterations} timed calls each; "
          f"latency in ms (p50 / p90 / p99), throughput at p50; ids signature {ids_name}")
    for batch in map(int, args.batch_sizes.split(",")):
        texts = text_inputs(text_signature, tf.constant(
            [" ".join(rng.choices(words, k=2 * max_len)) for _ in range(batch)]))
        features = {k: v for k, v in text_signature(**texts).items()
                    if k in INPUT_NAMES}
        assert features["input_ids"].shape == (batch, max_len), features["input_ids"].shape
        rows = {"direct Keras call": lambda: fetch(keras_call(features)),
                "SavedModel ids": lambda: fetch(ids_signature(**features)),
                "SavedModel raw text": lambda: fetch(text_signature(**texts))}
        results = interleaved_percentiles(rows, args.iterations)
        base = results["direct Keras call"][0] * 1000
        for name, (p50, p90, p99) in results.items():
            p50, p90, p99 = p50 * 1000, p90 * 1000, p99 * 1000
            print(f"batch {batch:>3}  {name:<20} {p50:8.1f} {p90:8.1f} {p99:8.1f}   "
                  f"{batch / p50 * 1000:7.1f} seq/s   {p50 / base:.2f}x")
    for replay in (False, True):
        seconds = first_call_in_fresh_process(export_dir, replay)
        print(f"first call after loading, {'after' if replay else 'without'} warm-up: "
              f"{seconds * 1000:.0f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="export this model directory (pretraining or "
                        "fine-tuned) instead of a random ELECTRA-Small")
    parser.add_argument("--classifier", action="store_true", help="a random fine-tuned "
                        "ELECTRA-Small SST classifier instead of the pretraining model")
    parser.add_argument("--batch-sizes", default="1,8,32")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--first-call", help=argparse.SUPPRESS)  # the fresh-process part
    parser.add_argument("--replay-warmup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_call:
        print(first_call(args.first_call, args.replay_warmup))
        return
    root = tempfile.mkdtemp(prefix="serving-latency-")
    try:
        run(args, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
