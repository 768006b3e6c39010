"""Learns a WordPiece vocabulary from a corpus, laid out like BERT's.

Words are counted with the tokenizer's `BasicTokenizer` (the original's splitting, so the
vocab fits how `FullTokenizer` splits text), then tensorflow-text's WordPiece learner
picks the pieces. The special tokens sit at BERT's ids, so configs need no change:
[PAD]=0, [unused0..98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103.

Usage:
  python -m pretrain_data.learn_vocab --corpus-dir corpus/ --vocab-file vocab.txt \\
      --vocab-size 30522
"""

from absl import flags

from electra_common import cli
from pretrain_data import cli_flags


def define_flags(fv):
    flags.DEFINE_string("corpus-dir", None, "Directory of UTF-8 text files.", flag_values=fv,
                        required=True)
    flags.DEFINE_string("vocab-file", None, "Output vocabulary file.", flag_values=fv,
                        required=True)
    flags.DEFINE_integer("vocab-size", 30522, "Maximum number of tokens, the 104 reserved "
                         "ones included.", flag_values=fv)
    flags.DEFINE_integer("lower-thresh", 10, "Lowest token count the learner's threshold "
                         "search tries.", flag_values=fv)
    cli_flags.define_tokenizer_flags(fv)


def main(args):
    from pretrain_data import vocab  # noqa: PLC0415 (TensorFlow: after the flags)
    tokens = vocab.learn_vocab_from_corpus(args.corpus_dir, args.vocab_file, args.vocab_size,
                                           lower_thresh=args.lower_thresh,
                                           **cli_flags.tokenizer_options(args))
    print("Wrote %d tokens to %s" % (len(tokens), args.vocab_file))


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
