"""Learns a WordPiece vocabulary from text, laid out like BERT's.

Words are counted with `tokenization.BasicTokenizer` (the original's splitting, so the
vocab fits how `FullTokenizer` splits text), then tensorflow-text's WordPiece learner
(`tensorflow_text.tools.wordpiece_vocab`, pure Python + NumPy, no Apache Beam) picks the
pieces. The special tokens sit at BERT's ids, so configs need no change: [PAD]=0,
[unused0..98]=1..99, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103.

Example:

>>> vocab = learn_vocab_from_corpus("corpus/", "vocab.txt", vocab_size=30522)
"""

import collections

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from electra_common import files
from pretrain_data import sources, tokenization

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

    Raises:
      ValueError: if `vocab_size` leaves no room for learned tokens, or the text has no
        words.
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
    """Writes one token per line (atomically: the file is whole or absent)."""
    files.write_text(vocab_file, "".join(token + "\n" for token in vocab))


def learn_vocab_from_corpus(corpus_dir, vocab_file, vocab_size=30522, do_lower_case=True,
                            strip_accents=True, **learn_params):
    """Learns a vocab from every text file of `corpus_dir` and writes it to `vocab_file`.

    Args:
      corpus_dir: directory of UTF-8 text files, read as the pretraining builder reads
        them (invalid UTF-8 is an error naming the file and line).
      vocab_file: the file written (replaced if it exists).
      vocab_size, do_lower_case, strip_accents, **learn_params: as `learn_vocab`.

    Returns:
      The vocabulary (list of tokens).
    """
    vocab = learn_vocab(sources.corpus_lines(corpus_dir), vocab_size, do_lower_case,
                        strip_accents, **learn_params)
    write_vocab(vocab, vocab_file)
    return vocab
