"""BERT's `FullTokenizer`, rebuilt on TensorFlow Text, id-for-id identical to the original.

The original (`model/tokenization.py` of google-research/electra, BERT's tokenizer) is
plain Python: `BasicTokenizer` (clean, space out CJK, split on whitespace, lower-case,
strip accents, split on punctuation) followed by a greedy longest-match-first
`WordpieceTokenizer`. This module produces exactly the same tokens and ids, but as
TensorFlow ops (TF core + tensorflow-text only, no `py_function`), so the same code
runs eagerly, inside a `tf.function`, in a tf.data pipeline or in a SavedModel signature.

Why not `tensorflow_text.BertTokenizer` or keras-hub's `BertTokenizer`? They do not
match the original: they fold with NFKD and NFKC_Casefold (ß→ss, ς→σ, ligatures,
fullwidth forms), turn control and format characters into word breaks instead of
deleting them, ignore NBSP and other `Zs` spaces, and mark words over 100 *bytes* as
unknown where the original's limit is 200 *characters*. So we write the
`BasicTokenizer` rules by hand with regex and normalisation ops, on character classes
taken from Python's `unicodedata` as the original does (`unicode_classes`), and only the
WordPiece step is tensorflow-text's.

Example:

>>> tokenizer = FullTokenizer("tests/fixtures/vocab_tiny.txt")
>>> tokenizer.tokenize("Hello, World!")
['he', '##l', '##l', '##o', ',', 'world', '!']
>>> tokens = tokenizer.tokenize("Hello, World!")
>>> ids = tokenizer.convert_tokens_to_ids(tokens)
>>> ragged_ids = tokenizer.tokenize_ids(tf.constant(["Hello, World!", "café"]))
"""

import collections

import tensorflow as tf
import tensorflow_text as tf_text

from pretrain_data import unicode_classes

# The special tokens a pretraining vocabulary must contain (the builder writes
# [CLS]/[SEP], the model masks with [MASK], WordPiece falls back to [UNK]).
REQUIRED_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The original's limit on word length (`WordpieceTokenizer.max_input_chars_per_word`),
# counted in code points; longer words become [UNK].
MAX_INPUT_CHARS_PER_WORD = 200


def load_vocab(vocab_file):
    """Loads a vocabulary file into an ordered dict token -> id.

    As in the original: one token per line, id = line index, each line stripped of
    surrounding whitespace; a token that appears twice keeps its LAST id.

    Args:
      vocab_file: path (local or any `tf.io.gfile` filesystem).

    Returns:
      `collections.OrderedDict` mapping token strings to int ids.

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: if a line is not valid UTF-8 (naming file and line).
    """
    if not tf.io.gfile.exists(vocab_file):
        raise FileNotFoundError("Vocabulary file not found: %s" % vocab_file)
    with tf.io.gfile.GFile(vocab_file, "rb") as f:
        data = f.read()
    # The original reads with `readline()` until it returns "": lines end at "\n"
    # only, and the empty string after a final "\n" is not a token.
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    vocab = collections.OrderedDict()
    for index, line in enumerate(lines):
        try:
            token = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError("%s, line %d: not valid UTF-8 (%s)"
                             % (vocab_file, index + 1, e)) from None
        vocab[token.strip()] = index
    return vocab


def check_vocab(vocab_file, vocab_size=None):
    """Loads a vocabulary for pretraining or serving, with errors that name the file.

    Args:
      vocab_file: path (local or any `tf.io.gfile` filesystem).
      vocab_size: the model's vocabulary size, if it must match; None to skip the check.

    Returns:
      The vocabulary, as `load_vocab` returns it (token -> id).

    Raises:
      FileNotFoundError: if the file does not exist.
      ValueError: if a line is not valid UTF-8, if [UNK], [CLS], [SEP] or [MASK] is
        missing, or if the number of tokens differs from `vocab_size`.
    """
    if not tf.io.gfile.exists(vocab_file):
        raise FileNotFoundError(f"{vocab_file}: vocabulary not found")
    vocab = load_vocab(vocab_file)
    missing = [t for t in REQUIRED_TOKENS if t not in vocab]
    if missing:
        raise ValueError("Vocabulary %s lacks the special token(s) %s; a BERT/ELECTRA vocab "
                         "has [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103."
                         % (vocab_file, ", ".join(missing)))
    if vocab_size is not None and len(vocab) != vocab_size:
        raise ValueError(f"{vocab_file} has {len(vocab)} tokens but vocab_size is "
                         f"{vocab_size}; set \"vocab_size\": {len(vocab)} in --hparams")
    return vocab


def _as_str(text):
    """The original's `convert_to_unicode`: bytes are decoded dropping invalid UTF-8."""
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError("Unsupported string type: %s" % type(text))


class FullTokenizer(tf.Module):
    """Runs end-to-end tokenization: the original's BasicTokenizer then WordPiece.

    Mirrors the original API (`tokenize`, `convert_tokens_to_ids`,
    `convert_ids_to_tokens`, `vocab`, `inv_vocab`) and adds batched graph-mode methods
    (`tokenize_ids`; `basic_tokenizer.tokenize` for words) usable in `tf.function`s and
    SavedModels.

    Args:
      vocab_file: WordPiece vocabulary, one token per line (id = line index).
      do_lower_case: lower-case the text (then, if `strip_accents`, strip accents).
      strip_accents: NFD-normalise and drop non-spacing marks; as in the original this
        only happens when `do_lower_case` is True.
      max_input_chars_per_word: words longer than this (in code points) become [UNK].
      unk_token: the token for unknown words.

    Example:

    >>> tokenizer = FullTokenizer("tests/fixtures/vocab_tiny.txt")
    >>> tokenizer.tokenize("[SEP] naïve")   # no special-token protection, as the original
    ['[', 's', '##e', '##p', ']', 'n', '##a', '##i', '##v', '##e']
    """

    def __init__(self, vocab_file, do_lower_case=True, strip_accents=True,
                 max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD, unk_token="[UNK]",
                 name=None):
        super().__init__(name=name)
        self.vocab = load_vocab(vocab_file)
        self.inv_vocab = {v: k for k, v in self.vocab.items()}
        if unk_token not in self.vocab:
            raise ValueError("Vocabulary %s has no %s token" % (vocab_file, unk_token))
        self.vocab_file = vocab_file
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_token = unk_token
        self.unk_id = self.vocab[unk_token]
        self.basic_tokenizer = BasicTokenizer(do_lower_case, strip_accents)
        # FastWordpieceTokenizer (linear-time WordPiece) gives the same greedy
        # longest-match-first result as the original and is ~5x faster than
        # WordpieceTokenizer. It takes the vocab as a list indexed by id, so ids that
        # lost their token to a later duplicate (the original keeps the last id) and the
        # empty token get placeholders containing a space: words never contain spaces,
        # so these can never match.
        id_to_token = ["<unreachable %d>" % i for i in range(max(self.inv_vocab) + 1)]
        for token, index in self.vocab.items():
            if token:
                id_to_token[index] = token
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=id_to_token, suffix_indicator="##", unknown_token=unk_token,
            token_out_type=tf.int64, no_pretokenization=True,
            # The original's limit is in characters; we apply it ourselves below.
            max_bytes_per_word=4 * max_input_chars_per_word + 4)

    # ---------------------------------------------------------------- original API

    def tokenize(self, text):
        """Tokenizes one string into WordPiece tokens (a list of str), as the original."""
        return self.convert_ids_to_tokens(self.tokenize_to_id_lists([text])[0])

    def convert_tokens_to_ids(self, tokens):
        """Ids of `tokens` (a KeyError for a token not in the vocab, as the original)."""
        return [self.vocab[token] for token in tokens]

    def convert_ids_to_tokens(self, ids):
        """Tokens of `ids` (a KeyError for an unknown id, as the original)."""
        return [self.inv_vocab[i] for i in ids]

    # ---------------------------------------------------------------- batched API

    def tokenize_to_id_lists(self, texts):
        """Eagerly tokenizes a list of strings (str or UTF-8 bytes) into lists of ids.

        Args:
          texts: a sequence of `str` (or bytes, decoded as the original does).

        Returns:
          A list (one entry per text) of lists of int ids.
        """
        texts = [_as_str(t).encode("utf-8") for t in texts]
        if not texts:
            return []
        ids = self.tokenize_ids(tf.constant(texts, tf.string))
        values = ids.flat_values.numpy().tolist()
        splits = ids.row_splits.numpy().tolist()
        return [values[a:b] for a, b in zip(splits, splits[1:])]

    def tokenize_lines(self, lines, flat=False):
        """Like `tokenize_to_id_lists` for `str` lines without "\\n" (lines of a file).

        Faster for many short lines: they are joined and encoded in one call and split
        again inside the graph.

        Args:
          lines: a list of `str`, none containing "\\n".
          flat: return `(values, row_splits)` (two lists of ints: all ids, and each
            line's offsets into them) instead of one list per line.
        """
        if not lines:
            return ([], [0]) if flat else []
        ids = self._tokenize_joined(tf.constant("\n".join(lines).encode("utf-8")))
        values = ids.flat_values.numpy().tolist()
        splits = ids.row_splits.numpy().tolist()
        if len(splits) != len(lines) + 1:
            raise ValueError("tokenize_lines: a line contains a newline")
        if flat:
            return values, splits
        return [values[a:b] for a, b in zip(splits, splits[1:])]

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)], autograph=False)
    def _tokenize_joined(self, joined):
        # Lines decoded by Python are valid UTF-8: no need for tokenize_ids' transcode.
        return self._tokenize_valid_utf8(tf.strings.split(joined, sep="\n"))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
    def tokenize_ids(self, texts):
        """Tokenizes a batch of UTF-8 strings into WordPiece ids; graph-friendly.

        Args:
          texts: string tensor [batch]. Invalid UTF-8 bytes are dropped, as the
            original's `convert_to_unicode` does (`errors="ignore"`).

        Returns:
          int64 `tf.RaggedTensor` [batch, (num_tokens)], no [CLS]/[SEP] added.
        """
        # ICU's "ignore" drops the same bytes as Python's (checked on random bytes).
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="ignore")
        return self._tokenize_valid_utf8(texts)

    def _tokenize_valid_utf8(self, texts):
        words = self.basic_tokenizer.tokenize(texts)
        flat_words = words.flat_values
        too_long = tf.strings.length(flat_words, unit="UTF8_CHAR") > self.max_input_chars_per_word
        # An empty word tokenizes to no pieces; we then append [UNK] to those rows, so
        # each over-long word becomes exactly one [UNK] (and costs no WordPiece time).
        pieces = self._wordpiece.tokenize(tf.where(too_long, "", flat_words))
        unk_rows = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(too_long, tf.int64))],
                    tf.constant(self.unk_id, tf.int64)),
            tf.cast(too_long, tf.int64))
        pieces = tf.concat([pieces, unk_rows], axis=1)
        return words.with_flat_values(pieces).merge_dims(1, 2)


class BasicTokenizer(tf.Module):
    """The original `BasicTokenizer` as TF ops: cleaning, CJK spacing, lower-casing,
    accent stripping, whitespace and punctuation splitting (everything before WordPiece).

    Args:
      do_lower_case: lower-case (Python `str.lower()` semantics, so "ß" stays "ß").
      strip_accents: after lower-casing only: NFD, then drop Mn characters.
    """

    def __init__(self, do_lower_case=True, strip_accents=True, name=None):
        super().__init__(name=name)
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self._classes = unicode_classes.unicode_classes()
        keys, values = unicode_classes.lowercase_fixups()
        self._lower_fixup_class = (unicode_classes.re2_class([(k, k) for k in keys.tolist()])
                                   if len(keys) else None)
        if self._lower_fixup_class:
            self._lower_fixup_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(keys, values), default_value=-1)

    def tokenize(self, texts):
        """Splits a batch of strings into words, as the original `BasicTokenizer.tokenize`.

        Args:
          texts: string tensor [batch] of valid UTF-8.

        Returns:
          string `tf.RaggedTensor` [batch, (num_words)].
        """
        classes = self._classes
        # _clean_text: delete control characters, map every kind of space to " ".
        texts = tf.strings.regex_replace(texts, classes["control"], "")
        texts = tf.strings.regex_replace(texts, classes["whitespace"], " ")
        # _tokenize_chinese_chars (before lower-casing, as in the original: F900-FAFF
        # compatibility ideographs decompose under NFD later).
        texts = tf.strings.regex_replace(texts, classes["cjk"], r" \0 ")
        if self.do_lower_case:
            # The original lower-cases each whitespace-separated token; doing it on the
            # whole string is the same because no space is "cased" or "case-ignorable"
            # (the only context lower-casing looks at: final sigma).
            texts = self._lower(texts)
            if self.strip_accents:
                # _run_strip_accents: NFD (not NFKD as tf-text's BertTokenizer), drop Mn.
                texts = tf_text.normalize_utf8(texts, "NFD")
                texts = tf.strings.regex_replace(texts, classes["nonspacing_mark"], "")
        # whitespace_tokenize + _run_split_on_punc in one pass: split on spaces (and
        # U+2028/2029, which str.split() also splits on), keep each punctuation char as
        # its own word.
        return tf_text.regex_split(
            texts, classes["split_space"] + "+|" + classes["punctuation"], classes["punctuation"])

    def _lower(self, texts):
        """Python's `str.lower()`: ICU's full lower-casing plus the version fix-ups."""
        texts = tf.strings.lower(texts, encoding="utf-8")
        if not self._lower_fixup_class:
            return texts
        # Only the (rare) strings containing a character ICU does not know are decoded to
        # code points and mapped; all others pass through untouched.
        needs_fix = tf.strings.regex_full_match(texts, "(?s).*" + self._lower_fixup_class + ".*")
        rows = tf.where(needs_fix)
        chars = tf.strings.unicode_decode(tf.gather_nd(texts, rows), "UTF-8")
        mapped = self._lower_fixup_table.lookup(chars.flat_values)
        chars = chars.with_flat_values(tf.where(mapped >= 0, mapped, chars.flat_values))
        return tf.tensor_scatter_nd_update(texts, rows, tf.strings.unicode_encode(chars, "UTF-8"))
