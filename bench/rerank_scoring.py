"""Electric's one-pass text score against masked-LM pseudo-log-likelihood: sentences/s at S=128.

    python bench/rerank_scoring.py [--seq-len 128] [--electric-texts 32] [--mlm-texts 4]
                                   [--batch-size 32] [--calls 3] [--results FILE]
                                   [--matmul-size 4096] [--smoke]

Two random-weight models of ELECTRA-Small's size (code defaults: H=256, 12 layers, E=128,
V=30522), every text filling S WordPieces (S − 2 scored), both timed in this run (median
of `--calls` calls after a warm-up call, each in a `tf.function`):
- Electric (`electric_objective`): its discriminator scores a batch of texts in one
  forward pass (`electra_tf.scoring.energy.electric_scores`);
- a BERT-style masked LM (`electra_objective: false`, the same encoder size): one forward
  pass per scored token, masked copies `--batch-size` at a time
  (`electra_tf.scoring.pseudo_likelihood.mlm_scores`).
It prints the CPU, the load and the matmul peaks, both rates in texts (sentences)/s and
their ratio; the issue requires Electric ≥ 10× the masked LM at S=128. Random weights cost
exactly what trained ones do.
`--results` adds the re-ranking accuracy of a demonstration run
(`python -m electra_quickstart.rerank_main`, its `rerank_results.json`) beside the rates.
`--smoke`: a one-layer H=64 model at S=16 and a 256×256 peak matmul, to check that the
benchmark works.
"""

import argparse
import json
import os

import common  # bench/common.py: puts the repository on sys.path

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from electra_tf import config as config_lib  # noqa: E402
from electra_tf.models import build_models  # noqa: E402
from electra_tf.pretraining.helpers import SPECIAL_IDS  # noqa: E402
from electra_tf.scoring.energy import electric_scores  # noqa: E402
from electra_tf.scoring.pseudo_likelihood import mlm_scores  # noqa: E402

# The two models: the objective hparams of each (everything else: the code defaults).
OBJECTIVES = {"electric": {"electric_objective": True, "electra_objective": False},
              "mlm": {"electra_objective": False}}
SMOKE = {"max_seq_length": 16, "vocab_size": 1000, "embedding_size": 32,
         "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 1}}
MINIMUM_RATIO = 10.0  # the requirement at S=128


def scoring_fn(method, seq_len, batch_size, **overrides):
    """A `tf.function` scoring a features batch with a random-weight model of `method`.

    Returns:
        (the function, the `PretrainingConfig`).
    """
    config = config_lib.PretrainingConfig(f"bench-{method}", "/tmp", max_seq_length=seq_len,
                                          **{**overrides, **OBJECTIVES[method]})
    models = build_models(config)
    cls_id, sep_id, mask_id = (SPECIAL_IDS[t] for t in ("[CLS]", "[SEP]", "[MASK]"))

    @tf.function
    def score(features):
        if method == "electric":
            return electric_scores(models.discriminator, features, cls_id, sep_id)["score"]
        return mlm_scores(models.generator, features, mask_id, cls_id, sep_id,
                          batch_size)["score"]

    return score, config


def full_texts(num_texts, seq_len, vocab_size, seed=0):
    """Features of `num_texts` texts of S − 2 random WordPieces each, in [CLS] ... [SEP]."""
    rng = np.random.default_rng(seed)
    first = max(SPECIAL_IDS.values()) + 1
    ids = rng.integers(first, vocab_size, (num_texts, seq_len)).astype(np.int32)
    ids[:, 0], ids[:, -1] = SPECIAL_IDS["[CLS]"], SPECIAL_IDS["[SEP]"]
    return {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids),
            "segment_ids": tf.zeros_like(ids)}


def texts_per_second(method, num_texts, args, overrides):
    """Median texts/s of scoring `num_texts` full texts with `method`."""
    fn, config = scoring_fn(method, args.seq_len, args.batch_size, **overrides)
    features = full_texts(num_texts, args.seq_len, config.vocab_size)
    return num_texts * common.steps_per_second(lambda: fn(features), args.calls, warmup=1,
                                               median=True)


def accuracy_lines(path):
    """The re-ranking accuracy lines of a demonstration's `rerank_results.json`."""
    with open(path, encoding="utf-8") as f:
        results = json.load(f)
    lines = [f"re-ranking accuracy ({path}): {results['num_lists']} held-out n-best lists, "
             f"chance {results['chance']:.3f}"]
    for method in ("electric", "cloze", "mlm"):
        if method in results:
            lines.append(f"  {method:<9} top-1 {results[method]['top1_accuracy']:.3f}")
    return lines


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--electric-texts", type=int, default=32,
                        help="texts per Electric call (one forward pass)")
    parser.add_argument("--mlm-texts", type=int, default=4,
                        help="texts per masked-LM call ((S − 2) masked copies each)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="masked copies per masked-LM forward pass")
    parser.add_argument("--calls", type=int, default=3, help="timed calls of each (median)")
    parser.add_argument("--results", help="a demonstration's rerank_results.json")
    common.add_matmul_size(parser)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    for name in ("seq_len", "electric_texts", "mlm_texts", "batch_size", "calls"):
        if getattr(args, name) < (3 if name == "seq_len" else 1):
            parser.error(f"--{name.replace('_', '-')}: too small, got {getattr(args, name)}")
    if args.results and not os.path.exists(args.results):
        parser.error(f"--results: no such file: {args.results}")
    if args.smoke:
        args.seq_len, args.matmul_size = SMOKE["max_seq_length"], 256
    return args


def main(argv=None):
    """Runs the benchmark. Returns {method: texts/s} and "ratio"."""
    args = parse_args(argv)
    overrides = {k: v for k, v in SMOKE.items() if k != "max_seq_length"} if args.smoke else {}
    common.print_machine(common.PRECISIONS, args.matmul_size)
    size = "smoke (H=64, 1 layer)" if args.smoke else "ELECTRA-Small size, random weights"
    print(f"{size}, S={args.seq_len}: every text {args.seq_len - 2} scored WordPieces",
          flush=True)
    rates = {"electric": texts_per_second("electric", args.electric_texts, args, overrides),
             "mlm": texts_per_second("mlm", args.mlm_texts, args, overrides)}
    rates["ratio"] = rates["electric"] / rates["mlm"]
    print(f"{'method':<40}{'passes/text':>12}{'sentences/s':>13}")
    print(f"{'Electric −energy (electric_scores)':<40}{1:>12}{rates['electric']:>13.2f}")
    print(f"{'MLM pseudo-LL (mlm_scores)':<40}{args.seq_len - 2:>12}{rates['mlm']:>13.2f}")
    verdict = ""
    if args.seq_len == 128 and not args.smoke:
        verdict = (f" ({'meets' if rates['ratio'] >= MINIMUM_RATIO else 'FAILS'} the "
                   f"required {MINIMUM_RATIO:.0f}x at S=128)")
    print(f"Electric / MLM pseudo-LL: {rates['ratio']:.1f}x{verdict}")
    if args.results:
        print("\n".join(accuracy_lines(args.results)))
    return rates


if __name__ == "__main__":
    main()
