"""Pretraining throughput and model-FLOPs utilisation (MFU) of ELECTRA-Small on this machine.

    python bench/pretrain_throughput.py [--batch-size 16] [--steps 20]

For float32 and mixed_bfloat16, with and without `jit_compile`: sequences/s of the full
training step (masking, generator, sampling, discriminator, backward, AdamWeightDecay with
the global clip), and MFU = the step's training FLOPs counted as the original's
`flops_computation.py` does, per second, divided by the matmul rate of a large square
matmul of the same dtype measured in the same run.
"""

import argparse
import os

import common  # bench/common.py: puts the repository on sys.path

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import checkpoints, config as config_lib, flops, optimization  # noqa: E402
from electra_tf.models import build_models  # noqa: E402
from electra_tf.pretraining.helpers import example_seeds  # noqa: E402
from electra_tf.pretraining.objective import Objective  # noqa: E402
from electra_tf.training.step import train_step  # noqa: E402


def step_rate(precision, jit_compile, batch_size, seq_len, steps):
    """Training steps per second of ELECTRA-Small (code defaults)."""
    config = config_lib.PretrainingConfig("bench", "/tmp", precision=precision,
                                          max_seq_length=seq_len)
    models = build_models(config)
    names = checkpoints.variable_map(models)
    variables = [m.variable for m in names.values()]
    optimizer = optimization.pretraining_optimizer(config, names)
    optimizer.build(variables)
    objective = Objective(config, models)
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, (batch_size, seq_len)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    features = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids),
                "segment_ids": tf.zeros_like(ids)}
    seeds = example_seeds(0, 0, batch_size)

    def loss_fn():
        total = objective(features, seeds, training=True)["total_loss"]
        return total, total

    step = tf.function(lambda: train_step(loss_fn, optimizer, variables),
                       jit_compile=jit_compile)
    return common.steps_per_second(step, steps, warmup=3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    step_flops = flops.electra_train_flops(256, 12, 64, 12, args.batch_size, 1, True, e=128,
                                           s=args.seq_len)
    print(f"ELECTRA-Small (gen 0.25), S={args.seq_len}, batch {args.batch_size}: "
          f"{step_flops / 1e9:.1f} GFLOP per training step (the original's count), "
          f"{os.cpu_count()} CPU cores")
    peaks = common.matmul_peaks(common.PRECISIONS)
    common.print_peaks(peaks)
    rows = {}
    for precision in ("float32", "mixed_bfloat16"):
        for jit in (False, True):
            rate = step_rate(precision, jit, args.batch_size, args.seq_len, args.steps)
            seqs = rate * args.batch_size
            mfu = rate * step_flops / peaks[precision]
            rows[(precision, jit)] = seqs
            print(f"{precision:<15} jit_compile={str(jit):<5} {seqs:7.1f} seq/s  "
                  f"MFU {100 * mfu:5.1f}%", flush=True)
    best32 = max(rows[("float32", j)] for j in (False, True))
    best16 = max(rows[("mixed_bfloat16", j)] for j in (False, True))
    print(f"mixed_bfloat16 / float32 (best of each): {best16 / best32:.2f}x")


if __name__ == "__main__":
    main()
