"""SQuAD fine-tuning and inference throughput of ELECTRA-Small with the joint-beam QA head.

    python bench/squad_throughput.py [--models small] [--seq-lens 384,512]
        [--precisions float32,mixed_bfloat16] [--jit-compile false] [--steps 3] [--batch 16]
        [--matmul-size 4096] [--smoke]

A `squad` (2.0) model with random weights and the default head (start logits, end logits
conditioned on the start, answerability classifier) on random in-memory batches:
- train: the exact compiled update fine-tuning uses (`finetune.trainer.make_train_step`, the
  end teacher-forced on the gold start);
- infer: the eval-mode model call `finetune.trainer.predict` makes, with the 20×20 beam
  (top-20 starts, top-20 ends for each), under `tf.function` (XLA with `--jit-compile true`).
Warm-up calls (tracing, compilation) are not timed; seq/s is
batch / the median time of the timed steps, which short bursts of other load do not move.

MFU as in `bench/finetune_throughput.py`: FLOPs counted as `electra_tf/flops.py` does
(training = 2 × forward, one-hot embedding lookup) over the float32 matmul peak, and for
mixed_bfloat16 also over the bfloat16 peak. The head is counted as it is computed here:
`qa_hidden` split into a start part and a token part (see `finetune/qa/head.py`), not the
original's [.., S, 2H] concatenation, which would count 2·H·512 more FLOPs per token and
start.
"""

import itertools

import common  # bench/common.py: puts the repository on sys.path

import tensorflow as tf  # noqa: E402

import finetune_throughput as ft  # noqa: E402  (bench/finetune_throughput.py)
from electra_tf.training import distribute  # noqa: E402
from finetune import tasks as tasks_lib  # noqa: E402

TASK = "squad"
ACTIVATION, SOFTMAX = common.flops.ACTIVATION_FLOPS, common.flops.SOFTMAX_FLOPS


def qa_head_flops(h, s, beam, training, q=512):
    """Forward FLOPs of the joint QA head with the answerability classifier on one sequence.

    Args:
        h: hidden size; s: sequence length; beam: `beam_size`; q: `qa_hidden` width.
        training: teacher forcing (one start) instead of the beam (`beam` starts).
    Returns:
        Start logits and their log-softmax, the end logits for 1 or `beam` starts (start
        part 2hq per start, token part 2hq per token once, add + bias + GELU and `dense_1`
        per start and token, log-softmax at inference), and the answerable classifier.
    """
    starts = 1 if training else beam
    start = 2 * h * s + s + SOFTMAX * s
    end = (starts * 2 * h * q + 2 * h * q * s
           + starts * s * ((2 + ACTIVATION) * q + 2 * q + 1)
           + (0 if training else SOFTMAX * beam * s))
    answerable = (SOFTMAX * s + 2 * h * s + 2 * (2 * h) * q + (1 + ACTIVATION) * q
                  + 2 * q + 1)
    return start + end + answerable


def forward_flops(config, training):
    """Forward FLOPs of one sequence through the encoder and the QA head."""
    bert = config.bert_config()
    return (common.encoder_flops(bert, config.embedding_size, config.max_seq_length)
            + qa_head_flops(bert.hidden_size, config.max_seq_length, config.beam_size,
                            training))


def infer_rate(config, features, steps, warmup):
    """Eval-mode calls per second: `model(features, training=False)`, the beam included."""
    with distribute.precision(config.precision):
        model, _, _ = ft.build(config, TASK)
        batch = {k: tf.constant(v) for k, v in features.items()}
        call = tf.function(lambda b: model(b, training=False)[TASK],
                           jit_compile=config.jit_compile)
        return common.steps_per_second(lambda: call(batch), steps, warmup, median=True)


def measure_row(config, mode, steps, warmup):
    """(sequences/s, FLOPs per sequence) of one row: "train" or "infer"."""
    features = ft.random_features(config, [tasks_lib.get_task(config, TASK, tokenizer=None)])
    if mode == "train":
        rate = ft.train_rate(config, features, steps, warmup, task=TASK)
        seq_flops = 2 * forward_flops(config, training=True)
    else:
        rate = infer_rate(config, features, steps, warmup)
        seq_flops = forward_flops(config, training=False)
    return rate * config.train_batch_size, seq_flops


def parse_args(argv=None):
    parser = ft.make_parser(__doc__, "small", 3)
    parser.add_argument("--seq-lens", default="384,512", help="comma-separated S values")
    parser.add_argument("--modes", default="train,infer", help="comma-separated: train, infer")
    parser.add_argument("--batch", type=int, default=16, help="sequences per step")
    args = ft.check_args(parser, parser.parse_args(argv), seq_lens="32", batch=2)
    args.modes = common.parse_list(parser, args.modes, ["train", "infer"], "modes")
    try:
        args.seq_lens = [int(x) for x in args.seq_lens.split(",")]
    except ValueError:
        parser.error(f"--seq-lens: expected comma-separated integers, got {args.seq_lens!r}")
    return args


def main(argv=None):
    args = parse_args(argv)
    peaks = common.print_machine(common.PRECISIONS, args.matmul_size)
    print(f"ELECTRA fine-tuning, SQuAD 2.0 joint-beam QA head (beam 20), random weights, "
          f"batch {args.batch}")

    def measure(key):
        model, seq_len, mode, precision, jit = key
        config = ft.bench_config(model, precision, jit, args.batch, seq_len, task=TASK)
        return measure_row(config, mode, args.steps, args.warmup) + (precision,)

    rows, _ = common.measure_table(
        list(itertools.product(args.models, args.seq_lens, args.modes, args.precisions,
                               args.jit_compile)),
        f"{'model':<6} {'S':>4} {'mode':<5} {'precision':<15} {'jit':<5}",
        lambda key: f"{key[0]:<6} {key[1]:>4} {key[2]:<5} {key[3]:<15} {str(key[4]):<5}",
        measure, peaks, args.matmul_size)
    print(f"done; {common.load_line()}")
    return rows


if __name__ == "__main__":
    main()
