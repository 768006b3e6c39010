"""Learns a WordPiece vocabulary from a corpus, laid out like BERT's.

Words are counted with our `BasicTokenizer` (the original's splitting, so the vocab
fits how `FullTokenizer` splits text), then tensorflow-text's WordPiece learner
(`tensorflow_text.tools.wordpiece_vocab`, pure Python + NumPy, no Apache Beam)
picks the pieces. The special tokens sit at BERT's ids, so configs need no change:
[PAD]=0, [unused0..98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103.

Usage:
  python -m pretrain_data.learn_vocab --corpus-dir corpus/ --vocab-file vocab.txt \\
      --vocab-size 30522
"""

import argparse
import collections
import sys

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from pretrain_data import build_pretraining_dataset as build_lib
from pretrain_data import tokenization

# BERT's first 104 ids.
RESERVED_TOKENS = (["[PAD]"] + ["[unused%d]" % i for i in range(99)]
                   + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"])


def count_words(lines, do_lower_case=True, strip_accents=True, batch_size=4096):
    """Counts the words `BasicTokenizer` produces from an iterable of lines.

    Returns:
      `collections.Counter` word (str) -> count.
    """
    basic = tokenization.BasicTokenizer(do_lower_case, strip_accents)
    tokenize = tf.function(basic.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    counts = collections.Counter()
    batch = []

    def flush():
        if batch:
            counts.update(tokenize(tf.constant(batch)).flat_values.numpy().tolist())
            batch.clear()
    for line in lines:
        batch.append(line.encode("utf-8") if isinstance(line, str) else line)
        if len(batch) >= batch_size:
            flush()
    flush()
    return collections.Counter({w.decode("utf-8"): c for w, c in counts.items()})


def learn_vocab(lines, vocab_size=30522, do_lower_case=True, strip_accents=True,
                **learn_params):
    """Learns a WordPiece vocabulary (a list of tokens, index = id).

    Args:
      lines: iterable of text lines (str or UTF-8 bytes).
      vocab_size: the maximum size, including the 104 reserved tokens; the learner
        aims for 95-100% of it.
      do_lower_case, strip_accents: as for the tokenizer that will use the vocab.
      **learn_params: passed to `wordpiece_tokenizer_learner_lib.learn`
        (e.g. `lower_thresh`, `max_unique_chars`).

    Returns:
      A list of tokens whose first 104 entries are `RESERVED_TOKENS`.
    """
    if vocab_size <= len(RESERVED_TOKENS):
        raise ValueError("vocab_size must exceed the %d reserved tokens" % len(RESERVED_TOKENS))
    counts = count_words(lines, do_lower_case, strip_accents)
    if not counts:
        raise ValueError("No words to learn a vocabulary from (empty corpus)")
    vocab = learner.learn(counts, vocab_size, list(RESERVED_TOKENS), **learn_params)
    assert vocab[:len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)
    return vocab


def write_vocab(vocab, vocab_file):
    with tf.io.gfile.GFile(vocab_file, "w") as f:
        f.write("".join(token + "\n" for token in vocab))


def learn_vocab_from_corpus(corpus_dir, vocab_file, vocab_size=30522, do_lower_case=True,
                            strip_accents=True, **learn_params):
    """Learns a vocab from every text file of `corpus_dir` and writes it to `vocab_file`.

    Returns:
      The vocabulary (list of tokens).
    """
    def lines():
        for path in build_lib.list_corpus_files(corpus_dir):
            summary = build_lib.BuildSummary()
            for lines in build_lib._line_lists_of_unit(*build_lib._file_unit(path), False, summary):
                yield from lines
    vocab = learn_vocab(lines(), vocab_size, do_lower_case, strip_accents, **learn_params)
    write_vocab(vocab, vocab_file)
    return vocab


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-dir", required=True)
    parser.add_argument("--vocab-file", required=True, help="Output vocabulary file.")
    parser.add_argument("--vocab-size", type=int, default=30522)
    parser.add_argument("--lower-thresh", type=int, default=10,
                        help="Lowest token count the learner's threshold search tries.")
    parser.add_argument("--no-lower-case", dest="do_lower_case", action="store_false")
    parser.add_argument("--no-strip-accents", dest="strip_accents", action="store_false")
    args = parser.parse_args(argv)
    try:
        vocab = learn_vocab_from_corpus(args.corpus_dir, args.vocab_file, args.vocab_size,
                                        args.do_lower_case, args.strip_accents,
                                        lower_thresh=args.lower_thresh)
    except (build_lib.CorpusError, FileNotFoundError, ValueError) as e:
        sys.exit("error: %s" % e)
    print("Wrote %d tokens to %s" % (len(vocab), args.vocab_file))


if __name__ == "__main__":
    main()
