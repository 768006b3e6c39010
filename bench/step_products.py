"""Where a pretraining step's time goes: its matrix products, each timed alone, against the
whole step.

    python bench/step_products.py [--model small] [--batch-size 16] [--seq-len 128]
        [--precision float32|mixed_bfloat16] [--steps 8] [--calls 20] [--repeats 5]
        [--data-dir DIR] [--matmul-size 4096] [--smoke]

Times `Pretrainer`'s training loop (the loop `run_pretraining` runs, on the records
`pretrain_throughput.py` writes), then collects every product of one training step from
its traced graph (TensorFlow's `MatMul` and `BatchMatMul` ops, forward and backward, the
bias gradients' products with a row of ones included) and times each distinct one alone:
the same shapes, transposes and dtype on random operands, `--calls` different operands a
call, the fastest of `--repeats` calls. Printed: the CPU, the load and the matmul peaks
(`--matmul-size`), one row per distinct product (count, shapes, milliseconds each and per
step, GFLOP/s), the products' sum per step (their rate also as a share of the precision's
matmul peak) against the step's time, and what is left for everything else (elementwise
kernels, random numbers, the optimizer, the executor's per-op cost, and products that run
slower inside the step than alone). A speed-up of the step beyond what the rest can give is only
possible by faster products. `--smoke`: a one-layer model and a 256×256 peak matmul,
seconds; it only checks the benchmark works.
"""

import argparse
import collections

import common  # bench/common.py: puts the repository on sys.path

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import pretrain_throughput  # noqa: E402

# The graph ops that are matrix products (their transposes are attributes of the op).
PRODUCT_OPS = {"MatMul": ("transpose_a", "transpose_b"),
               "BatchMatMulV2": ("adj_x", "adj_y"), "BatchMatMulV3": ("adj_x", "adj_y")}
# Operands of one timed call take at most this many bytes (the [B·N, V] ones are large).
OPERAND_BYTES = 2 ** 27

Product = collections.namedtuple("Product", "a_shape b_shape transpose_a transpose_b dtype")


def step_products(graph):
    """{Product: count} of the matrix products in a traced graph.

    Args:
        graph: a `tf.Graph` (e.g. a concrete function's), every product's shapes static.
    Returns:
        a Counter of `Product`s (operand shapes as tuples, the transposes, the dtype name).
    Raises:
        ValueError: naming the op, if a product's shape is not fully known.
    """
    products = collections.Counter()
    for op in graph.get_operations():
        if op.type not in PRODUCT_OPS:
            continue
        shapes = [tuple(x.shape.as_list()) if x.shape.rank is not None else None
                  for x in op.inputs]
        if any(s is None or None in s for s in shapes):
            raise ValueError(f"{op.name} ({op.type}): operand shapes {shapes} are not fully "
                             f"known; the step must be traced with a static batch")
        transposes = [op.get_attr(name) for name in PRODUCT_OPS[op.type]]
        products[Product(*shapes, *transposes, op.inputs[0].dtype.name)] += 1
    return products


def product_flops(product):
    """2·M·N·K times the batch of one product."""
    a = product.a_shape
    rows, inner = (a[-1], a[-2]) if product.transpose_a else (a[-2], a[-1])
    b = product.b_shape
    cols = b[-2] if product.transpose_b else b[-1]
    return 2 * int(np.prod(a[:-2], dtype=np.int64)) * rows * cols * inner


def product_seconds(product, calls=20, repeats=5):
    """Seconds of one product alone (`common.seconds_each` over `calls` different left
    operands, at most `OPERAND_BYTES` of them)."""
    dtype = tf.as_dtype(product.dtype)
    size = int(np.prod(product.a_shape)) * dtype.size
    calls = max(2, min(calls, OPERAND_BYTES // size))
    lefts = [tf.cast(tf.random.normal(product.a_shape, seed=i), dtype) for i in range(calls)]
    right = tf.cast(tf.random.normal(product.b_shape), dtype)
    rank2 = len(product.a_shape) == 2
    flags = ({"transpose_a": product.transpose_a, "transpose_b": product.transpose_b}
             if rank2 else {"adjoint_a": product.transpose_a, "adjoint_b": product.transpose_b})
    return common.seconds_each(lambda x: tf.linalg.matmul(x, right, **flags), lefts, repeats)


def describe(product):
    """'[2048,256]ᵀ·[256,1024]' with ᵀ on a transposed operand."""
    def operand(shape, transposed):
        return f"[{','.join(map(str, shape))}]" + ("ᵀ" if transposed else "")
    return (f"{operand(product.a_shape, product.transpose_a)}·"
            f"{operand(product.b_shape, product.transpose_b)}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="small", choices=sorted(pretrain_throughput.MODELS))
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seq-len", type=int)
    parser.add_argument("--precision", default="float32", choices=common.PRECISIONS)
    parser.add_argument("--steps", type=int, default=8, help="timed steps of the loop")
    parser.add_argument("--calls", type=int, default=20, help="products per timed call")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per product")
    parser.add_argument("--data-dir", help="where the records are (written if absent); "
                        "default: the pretraining bench's directory for the model's shapes")
    common.add_matmul_size(parser)
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (one-layer "
                        "model) that only checks the benchmark works")
    args = parser.parse_args(argv)
    if args.smoke:
        args.model, args.steps, args.calls, args.repeats = "tiny", 1, 2, 1
        args.matmul_size = 256
    _, batch, seq_len = pretrain_throughput.MODELS[args.model]
    args.batch_size = args.batch_size or batch
    args.seq_len = args.seq_len or seq_len
    if min(args.batch_size, args.seq_len, args.steps, args.calls, args.repeats) < 1:
        parser.error("--batch-size, --seq-len, --steps, --calls and --repeats must be >= 1")
    args.data_dir = args.data_dir or pretrain_throughput.default_data_dir(args)
    return args


def main(argv=None):
    """Runs the benchmark; returns ({Product: (count, seconds alone)}, step seconds)."""
    from electra_tf.pretraining.trainer import Pretrainer  # noqa: PLC0415

    args = parse_args(argv)
    config = pretrain_throughput.bench_config(
        args, pretrain_throughput.Ours(args.precision, False))
    peaks = common.print_machine(common.PRECISIONS, args.matmul_size)
    pretrain_throughput.write_records(config)
    trainer = Pretrainer(config, log=lambda line: None)
    iterator = trainer.input_iterator(config.train_batch_size, trainer.run_seed)
    step = pretrain_throughput.step_seconds(trainer, iterator, args.steps, warmup=1)
    graph = tf.function(trainer.replica_step).get_concrete_function(iterator.element_spec).graph
    products = step_products(graph)
    print(f"ELECTRA {args.model}, S={args.seq_len}, batch {args.batch_size}, "
          f"{args.precision}: {sum(products.values())} products in a training step, "
          f"{len(products)} distinct; each timed alone")
    product_seconds(next(iter(products)), args.calls, args.repeats)  # warm-up: the first
    # product timed after the training loop measured up to 1.8× slower than on a rerun
    timed = {p: (count, product_seconds(p, args.calls, args.repeats))
             for p, count in products.items()}
    print(f"{'count':>5}  {'product':<34} {'dtype':<8} {'ms each':>8} {'ms/step':>8} "
          f"{'GFLOP/s':>8}")
    total = flop = 0.0
    for p, (count, seconds) in sorted(timed.items(), key=lambda kv: -kv[1][0] * kv[1][1]):
        total += count * seconds
        flop += count * product_flops(p)
        print(f"{count:>5}  {describe(p):<34} {p.dtype:<8} {seconds * 1e3:>8.3f} "
              f"{count * seconds * 1e3:>8.1f} {product_flops(p) / max(seconds, 1e-9) / 1e9:>8.0f}")
    rate = flop / max(total, 1e-9)
    print(f"products alone: {total * 1e3:.0f} ms per step ({flop / 1e9:.1f} GFLOP, "
          f"{rate / 1e9:.0f} GFLOP/s, {100 * rate / peaks[args.precision]:.0f}% of the "
          f"{args.precision} matmul peak); the step: {step * 1e3:.0f} ms (mean of "
          f"{args.steps}); products {100 * total / step:.0f}% of it, everything else "
          f"{(step - total) * 1e3:.0f} ms")
    print(f"done; {common.load_line()}")
    return timed, step


if __name__ == "__main__":
    main()
