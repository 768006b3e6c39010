"""Fine-tuning throughput and MFU of ELECTRA-Small and -Base classification on this machine.

    python bench/finetune_throughput.py [--models small,base]
        [--precisions float32,mixed_bfloat16] [--jit-compile false,true] [--steps 5]
        [--batch 32] [--seq-len 128] [--rounds 2] [--plain-keras on|off]
        [--original auto|on|off] [--original-tools DIR] [--matmul-size 4096] [--smoke]

An MNLI model (3 labels, [CLS] → dropout → dense, summed cross-entropy) with random weights
is trained on random in-memory batches by the exact compiled update fine-tuning uses
(`finetune.trainer.make_train_step`: forward, backward, AdamWeightDecay with layer-wise LR
decay and the global-norm clip). Warm-up steps (tracing, compilation) are not timed; seq/s
is batch / the median time of the timed steps, which short bursts of other load do not move.
Every row is measured `--rounds` times in turn, the best kept.

Beside ours, `--plain-keras on` (the default) measures what plain Keras does with the same
network: keras-hub's `ElectraBackbone` of the same sizes, [CLS] → dropout → `Dense(3)`,
`compile` with Keras' `AdamW` (the same peak LR decaying linearly, without warm-up or
layer-wise decay; weight decay 0.01 without LayerNorm and biases; the global-norm clip 1)
and the summed cross-entropy, trained by `train_on_batch` on the same batch (rows "plain
Keras <precision>"; its `jit_compile` is the row's). A baseline for speed only: keras-hub's
layers (a tanh-approximate GELU, for one) are not the original's numbers.

MFU = training FLOPs per second / the float32 matmul peak measured in the same run, the
FLOPs counted as the pretraining benchmark does (`electra_tf/flops.py`: 2 × forward, the
embedding lookup as a one-hot matmul); mixed_bfloat16 rows also give the MFU against the
bfloat16 peak. Targets: MFU ≥ 50% in float32, mixed_bfloat16 ≥ 1.6× float32.

With `--original auto|on` (auto: when its environment is available), the original TF1 code's
fine-tuning update is measured too, first in each round, on the same batch, in a fresh
process (`bench/original_finetune.py` under the original's environment, see
`bench/original.py`; its peak RSS goes to stderr), and our best of each precision is given
as a ratio to it.
"""

import argparse
import itertools
import os
import sys
import tempfile

import common  # bench/common.py: puts the repository on sys.path
import original

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import config as config_lib  # noqa: E402
from electra_tf.training import distribute  # noqa: E402
from finetune import tasks as tasks_lib  # noqa: E402
from finetune import trainer  # noqa: E402
from finetune.config import FinetuningConfig  # noqa: E402
from finetune.model import build_finetuning_model, dummy_features  # noqa: E402

TASK = "mnli"
MFU_TARGET = 0.5
BF16_SPEEDUP_TARGET = 1.6
# "tiny" (one layer, H=64, 1,000 words) is for smoke runs that only check the benchmark works.
MODEL_SIZES = {"small": {"model_size": "small"}, "base": {"model_size": "base"},
               "tiny": {"model_size": "small", "vocab_size": 1000, "model_hparam_overrides":
                        {"hidden_size": 64, "num_hidden_layers": 1}}}
DEFAULT_BATCH = {"small": 32, "base": 16, "tiny": 4}
NUM_TRAIN_STEPS = 10000  # the LR schedule's length (ours and the original's): LR is not ~0
PLAIN_KERAS = "plain Keras "  # + the precision: the rows of the keras-hub baseline


def bench_config(model, precision, jit_compile, batch_size, seq_len, task=TASK):
    """The `FinetuningConfig` of one benchmark row (no files are read)."""
    if model not in MODEL_SIZES:
        raise ValueError(f"model must be one of {', '.join(MODEL_SIZES)}, got {model!r}")
    return FinetuningConfig("bench", "/nonexistent-bench-data", task_names=[task],
                            precision=precision, jit_compile=jit_compile,
                            train_batch_size=batch_size, max_seq_length=seq_len,
                            **MODEL_SIZES[model])


def random_features(config, tasks, seed=0):
    """One batch of random records with every feature `tasks` need: a full two-segment
    input (segment 1, the QA context, from the middle), random labels (3 classes), answer
    spans of up to 10 tokens inside segment 1, and a quarter of them impossible (0, 0)."""
    rng = np.random.default_rng(seed)
    b, s = config.train_batch_size, config.max_seq_length
    features = dummy_features(tasks, b, s)
    ids = rng.integers(104, config.bert_config().vocab_size, (b, s), dtype=np.int32)
    ids[:, 0], ids[:, -1] = 101, 102
    features["input_ids"] = ids
    features["input_mask"] = np.ones_like(ids)
    features["segment_ids"][:, s // 2:] = 1
    starts = rng.integers(s // 2, s - 1, b)
    impossible = rng.random(b) < 0.25
    values = {"label_ids": rng.integers(0, 3, b), "eid": np.arange(b),
              "start_positions": np.where(impossible, 0, starts),
              "end_positions": np.where(impossible, 0,
                                        np.minimum(starts + rng.integers(0, 10, b), s - 2)),
              "is_impossible": impossible}
    for key, value in features.items():
        suffix = next((v for v in values if key.endswith("_" + v)), None)
        if suffix is not None and key.split("_", 1)[0] in {t.name for t in tasks}:
            features[key] = values[suffix].astype(value.dtype)
    return features


def build(config, task=TASK):
    """A random-weight fine-tuning model, its optimizer and the default strategy, built as
    fine-tuning builds them (under the strategy scope and the precision policy)."""
    strategy = distribute.get_strategy(config)
    with strategy.scope():
        tasks = [tasks_lib.get_task(config, task, tokenizer=None)]
        model = build_finetuning_model(config, tasks)
        optimizer = trainer.build_optimizer(config, model, num_train_steps=NUM_TRAIN_STEPS)
    return model, optimizer, strategy


def train_rate(config, features, steps, warmup, task=TASK):
    """Training steps per second of `make_train_step` on one repeated in-memory batch."""
    with distribute.precision(config.precision):
        model, optimizer, strategy = build(config, task)
        dataset = tf.data.Dataset.from_tensors(features).repeat()
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        step = trainer.make_train_step(config, model, optimizer, strategy)
        return common.steps_per_second(lambda: step(iterator), steps, warmup, median=True)


def plain_keras_model(config, num_labels=3):
    """What plain Keras builds for `config`'s classifier: keras-hub's `ElectraBackbone` of the
    same sizes, [CLS] → dropout → a float32 dense head, compiled with Keras' `AdamW` (peak LR
    decaying linearly, no warm-up and no layer-wise decay; weight decay except LayerNorm and
    biases; the global-norm clip 1) and the summed cross-entropy; `jit_compile` the row's."""
    import keras_hub  # here: only the plain Keras rows need it (squad_throughput imports us)

    bert = config.bert_config()
    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=bert.vocab_size, num_layers=bert.num_hidden_layers,
        num_heads=bert.num_attention_heads, hidden_dim=bert.hidden_size,
        embedding_dim=config_lib.embedding_size(config, bert),
        intermediate_dim=bert.intermediate_size, dropout=bert.hidden_dropout_prob,
        max_sequence_length=bert.max_position_embeddings, num_segments=bert.type_vocab_size)
    cls = backbone.output["sequence_output"][:, 0, :]
    logits = keras.layers.Dense(num_labels, dtype="float32")(
        keras.layers.Dropout(bert.hidden_dropout_prob)(cls))
    model = keras.Model(backbone.input, logits)
    schedule = keras.optimizers.schedules.PolynomialDecay(
        config.learning_rate, NUM_TRAIN_STEPS, end_learning_rate=0.0)
    optimizer = keras.optimizers.AdamW(
        schedule, weight_decay=config.weight_decay_rate, beta_1=0.9, beta_2=0.999,
        epsilon=1e-6, global_clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(optimizer=optimizer, jit_compile=config.jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True,
                                                                  reduction="sum"))
    return model


def plain_keras_rate(config, features, steps, warmup, task=TASK):
    """Training steps per second of plain Keras (`plain_keras_model`, `train_on_batch`) on
    `features`' ids, segments, mask and labels."""
    with distribute.precision(config.precision):
        model = plain_keras_model(config)
    inputs = {"token_ids": features["input_ids"], "segment_ids": features["segment_ids"],
              "padding_mask": features["input_mask"]}
    labels = features[f"{task}_label_ids"]
    return common.steps_per_second(lambda: model.train_on_batch(inputs, labels), steps,
                                   warmup, median=True)


def original_rate(environment, args, model, features):
    """Sequences per second of the original's fine-tuning update of `model`'s size on the
    batch `features`, in a fresh process; its peak RSS goes to stderr.

    Args:
        environment: (the original's Python, its code's folder): `original.environment`.
        args: the bench's options (steps, warm-up).
        model: small, base or large.
        features: the batch, {feature: array}.
    """
    python, src = environment
    with tempfile.TemporaryDirectory() as tmp:
        batch = os.path.join(tmp, "batch.npz")
        np.savez(batch, **features)
        command = [python, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "original_finetune.py"),
                   "--src", src, "--batch", batch, "--model-size", model, "--task", TASK,
                   "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--num-train-steps", str(NUM_TRAIN_STEPS)]
        result, rss = common.run_process(command, f"{original.NAME} ({model})")
    print(f"{original.NAME} ({model}): peak RSS {rss / 2**30:.2f} GB", file=sys.stderr)
    return result["seq_per_s"]


def classifier_flops(hidden_size, num_labels):
    """Forward FLOPs of the classification head on one sequence: dropout on [CLS], the
    dense layer with its bias, log-softmax (the constants of `electra_tf/flops.py`)."""
    return (common.flops.DROPOUT_FLOPS * hidden_size + 2 * hidden_size * num_labels
            + num_labels + common.flops.SOFTMAX_FLOPS * num_labels)


def train_flops_per_sequence(config):
    """Training FLOPs of one sequence: 2 × (encoder + classification head) forward."""
    bert = config.bert_config()
    forward = (common.encoder_flops(bert, config.embedding_size, config.max_seq_length)
               + classifier_flops(bert.hidden_size, 3))
    return 2 * forward


def make_parser(doc, default_models, default_steps):
    """The options every fine-tuning benchmark takes; `doc` is its module docstring."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="--smoke: a seconds-long run (one-layer model, float32, tiny batch and "
               "matmul) that only checks the benchmark works.")
    parser.add_argument("--models", default=default_models,
                        help="comma-separated: small, base, tiny (one layer, H=64)")
    parser.add_argument("--precisions", default=",".join(common.PRECISIONS),
                        help="comma-separated: float32, mixed_bfloat16")
    parser.add_argument("--jit-compile", default="false",
                        help="comma-separated: false, true (XLA)")
    parser.add_argument("--steps", type=int, default=default_steps, help="timed steps per row")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    common.add_matmul_size(parser)
    parser.add_argument("--smoke", action="store_true")
    return parser


def check_args(parser, args, **smoke):
    """Applies `--smoke` (the common settings, then `smoke`) and splits the list options."""
    if args.smoke:
        vars(args).update(models="tiny", precisions="float32", steps=1, warmup=1,
                          matmul_size=256, **smoke)
    args.models = common.parse_list(parser, args.models, list(MODEL_SIZES), "models")
    args.precisions = common.parse_list(parser, args.precisions, common.PRECISIONS,
                                        "precisions")
    args.jit_compile = [x == "true" for x in common.parse_list(
        parser, args.jit_compile, ["false", "true"], "jit-compile")]
    return args


def parse_args(argv=None):
    parser = make_parser(__doc__, "small,base", 5)
    parser.add_argument("--batch", type=int, default=None,
                        help="sequences per step (default: 32 for small, the original's "
                             "fine-tuning batch; 16 for base)")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2,
                        help="every row measured this many times in turn, the best kept")
    parser.add_argument("--plain-keras", default="on", choices=("on", "off"),
                        help="also measure plain Keras (keras-hub's ElectraBackbone, AdamW, "
                             "train_on_batch) in every precision")
    original.add_options(parser)
    args = check_args(parser, parser.parse_args(argv), seq_len=32, original="off", rounds=1)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.original == "on" and set(args.models) == {"tiny"}:
        parser.error("--original on: the original has no tiny model (use small or base)")
    if args.original != "off" and args.warmup < 1:
        parser.error("--warmup must be >= 1 when the original is measured (its first step "
                     "optimises the graph)")
    return args


def main(argv=None):
    args = parse_args(argv)
    peaks = common.print_machine(common.PRECISIONS, args.matmul_size)
    print(f"ELECTRA fine-tuning, {TASK.upper()} classification head (3 labels), "
          f"S={args.seq_len}, random weights")
    batch = {m: args.batch or DEFAULT_BATCH[m] for m in args.models}
    measured_original, why = original.available(args)
    if not measured_original:
        print(f"original TF1 code: not measured ({why}); ours only")
    elif "tiny" in args.models:
        print("original TF1 code: not measured for the tiny model (the original has none)")
    environment = original.environment(args.original_tools) if measured_original else None
    keys = [(m, original.NAME, False) for m in args.models if measured_original and m != "tiny"]
    precisions = args.precisions + ([PLAIN_KERAS + p for p in args.precisions]
                                    if args.plain_keras == "on" else [])
    keys += list(itertools.product(args.models, precisions, args.jit_compile))

    def measure(key):
        model, row, jit = key
        precision = row.removeprefix(PLAIN_KERAS)
        config = bench_config(model, "float32" if row == original.NAME else precision, jit,
                              batch[model], args.seq_len)
        features = random_features(config, [tasks_lib.get_task(config, TASK, tokenizer=None)])
        if row == original.NAME:
            seqs = original_rate(environment, args, model, features)
        else:
            rate = plain_keras_rate if row.startswith(PLAIN_KERAS) else train_rate
            seqs = rate(config, features, args.steps, args.warmup) * batch[model]
        return seqs, train_flops_per_sequence(config), config.precision

    rows, peaks = common.measure_table(
        keys, f"{'model':<6} {'batch':>5} {'precision':<26} {'jit':<5}",
        lambda key: f"{key[0]:<6} {batch[key[0]]:>5} {key[1]:<26} {str(key[2]):<5}",
        measure, peaks, args.matmul_size, args.rounds)
    print_targets(rows, peaks)
    print(f"done; {common.load_line()}")
    return rows


def best_of(rows, model, prefix=""):
    """{precision: the best (seq/s, MFU) over jit_compile of `model`'s rows labelled
    `prefix` + precision, or None}."""
    return {p: max((v for (m, q, _), v in rows.items() if m == model and q == prefix + p),
                   default=None) for p in common.PRECISIONS}


def print_targets(rows, peaks):
    """Whether each model meets the issue's targets (best over jit_compile settings), and our
    best of each precision over the original's rate where it was measured."""
    for model in dict.fromkeys(m for m, _, _ in rows):
        best = best_of(rows, model)
        if best["float32"]:
            mfu = best["float32"][1]
            print(f"{model}: float32 MFU {100 * mfu:.1f}% (target ≥ {100 * MFU_TARGET:.0f}%): "
                  f"{'met' if mfu >= MFU_TARGET else 'NOT met'}")
        if best["float32"] and best["mixed_bfloat16"]:
            ratio = best["mixed_bfloat16"][0] / best["float32"][0]
            met = "met" if ratio >= BF16_SPEEDUP_TARGET else "NOT met"
            print(f"{model}: mixed_bfloat16 / float32 {ratio:.2f}x (target ≥ "
                  f"{BF16_SPEEDUP_TARGET}x): {met}; the bfloat16 / float32 matmul peak ratio "
                  f"of this CPU is {peaks['mixed_bfloat16'] / peaks['float32']:.2f}x")
        then = rows.get((model, original.NAME, False))
        if then:
            print(f"{model}: ours / {original.NAME}: " + ", ".join(
                f"{p} {best[p][0] / then[0]:.2f}x" for p in common.PRECISIONS if best[p]))
        plain = best_of(rows, model, PLAIN_KERAS)
        if any(best[p] and plain[p] for p in common.PRECISIONS):
            print(f"{model}: ours / plain Keras (best of each): " + ", ".join(
                f"{p} {best[p][0] / plain[p][0]:.2f}x" for p in common.PRECISIONS
                if best[p] and plain[p]))


if __name__ == "__main__":
    main()
