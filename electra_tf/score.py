"""Scores texts, or re-ranks n-best lists, with a pretraining model directory.

    python -m electra_tf.score --model-dir DIR --input FILE [--output OUT]
        [--method electric|mlm|cloze] [--batch-size N] [--vocab-file VOCAB]

FILE holds one text per line, or (if any line has a tab) one n-best group of tab-separated
candidates per line. OUT (default: standard output) gets one JSON object per input line:
`text`, `score`, `tokens`, `token_scores`, `truncated`; for a group, `candidates`,
`scores`, `order` (best first), `best` and `truncated` (candidate indices). Scores are
summed log-probabilities: higher is more likely. Methods, the derivation of Electric's
score and the JSON fields: docs/scoring.md.
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("model-dir", None, "Pretraining model directory "
                        "(<data-dir>/models/<name>).", flag_values=fv, required=True)
    flags.DEFINE_string("input", None, "Texts, one per line; or n-best groups, one per line, "
                        "candidates separated by tabs.", flag_values=fv, required=True)
    flags.DEFINE_string("output", None, "JSON-lines file to write; default: standard "
                        "output.", flag_values=fv)
    flags.DEFINE_enum("method", "electric", ["electric", "mlm", "cloze"],
                      "electric: Electric's -energy, one pass (Electric-trained directories); "
                      "mlm: the generator's masked-LM pseudo-log-likelihood, one pass per "
                      "WordPiece; cloze: Electric's two-tower generator, one pass.",
                      flag_values=fv)
    flags.DEFINE_integer("batch-size", 32, "Texts per batch; sequences per forward pass.",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_string("vocab-file", None, "Vocabulary; default: DIR/vocab.txt, else "
                        "<data-dir>/vocab.txt.", flag_values=fv)


def main(args):
    from electra_tf.scoring.scorer import score_file  # noqa: PLC0415 (after flags)

    score_file(args.model_dir, args.input, args.output, args.method, args.vocab_file,
               args.batch_size)
    if args.output:
        print(f"wrote {args.output}")


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
