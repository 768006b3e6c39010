"""Electric scoring put to work: re-ranking held-out n-best lists, against masked-LM
pseudo-likelihood (the demonstration of docs/rerank-demo.md).

    python -m electra_quickstart.rerank_main [--output-dir demo_output] [--num-train-steps 800]
                                             [--num-documents 2000] [--num-lists 200]
                                             [--corruptions-per-kind 1]

The main job's generated corpus without a held-out quarter of its grammar's sentences →
vocabulary → pretraining records → two debug-size models pretrained as the main job
pretrains (at a lower learning rate), on the same data and steps: Electric, and a
BERT-style masked LM → n-best lists of held-out sentences (the original; a word replaced,
two words swapped, a word dropped) → both re-rank them: top-1 accuracy against chance, and
sentences/s, of Electric's one-pass score, its cloze generator's one-pass log q and the
masked LM's pseudo-log-likelihood (one pass per token). Each run writes a new run-<n>
directory under the output directory: `nbest.tsv` (the lists, original first: the input
of `python -m electra_tf.score`) and `rerank_results.json` (the table).
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("output-dir", "demo_output", "Where the run directory is created.",
                        flag_values=fv)
    flags.DEFINE_integer("num-train-steps", 800, "Pretraining steps of each model.",
                         flag_values=fv)
    flags.DEFINE_integer("num-documents", 2000, "Documents in the generated corpus.",
                         flag_values=fv)
    flags.DEFINE_integer("num-lists", 200, "Held-out n-best lists to re-rank.",
                         flag_values=fv)
    flags.DEFINE_integer("corruptions-per-kind", 1, "Corruptions of each kind (replaced, "
                         "swapped, dropped) in every list.", flag_values=fv)


def main(args):
    from electra_quickstart.rerank import run_rerank  # noqa: PLC0415 (after the flags)

    run_rerank(args.output_dir, args.num_train_steps, args.num_documents, args.num_lists,
               per_kind=args.corruptions_per_kind)


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
