"""BERT's `FullTokenizer`, rebuilt on TensorFlow Text, id-for-id identical to the original.

The original (`model/tokenization.py` of google-research/electra, BERT's tokenizer) is
plain Python: `BasicTokenizer` (clean, space out CJK, split on whitespace, lower-case,
strip accents, split on punctuation) followed by a greedy longest-match-first
`WordpieceTokenizer`. This module produces exactly the same tokens and ids, but as
TensorFlow ops (TF core + tensorflow-text only, no `py_function`), so the same code
runs eagerly, inside a `tf.function`, in a tf.data pipeline or in a SavedModel signature.

Why not `tensorflow_text.BertTokenizer` or keras-hub's `BertTokenizer`? They do not
match the original (see caveat C13 of the fixtures README): they fold with NFKD and
NFKC_Casefold (ß→ss, ς→σ, ligatures, fullwidth forms), turn control and format
characters into word breaks instead of deleting them, ignore NBSP and other `Zs`
spaces, and mark words over 100 *bytes* as unknown where the original's limit is
200 *characters*. So we write the `BasicTokenizer` rules by hand with regex and
normalisation ops, and only the WordPiece step is tensorflow-text's.

Unicode tables: the original asks Python's `unicodedata` for character categories,
so its output depends on the Python version (Python 3.11 has Unicode 14.0). RE2's
`\\p{..}` classes and ICU know other Unicode versions, so instead of `\\p{..}` we build
explicit code-point classes from the running interpreter's `unicodedata` (once per
process, ~0.5 s). Lower-casing uses ICU (`tf.strings.lower`), whose tables in
TF 2.21 predate Unicode 14; the few characters on which it differs from Python's
`str.lower()` are fixed up (see `_lowercase_fixups`).

Example:

>>> tokenizer = FullTokenizer("tests/fixtures/vocab_tiny.txt")
>>> tokenizer.tokenize("Hello, World!")
['he', '##l', '##l', '##o', ',', 'world', '!']
>>> tokens = tokenizer.tokenize("Hello, World!")
>>> ids = tokenizer.convert_tokens_to_ids(tokens)
>>> ragged_ids = tokenizer.tokenize_ids(tf.constant(["Hello, World!", "café"]))
"""

import collections
import functools
import re
import unicodedata

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

# The special tokens a pretraining vocabulary must contain (the builder writes
# [CLS]/[SEP], the model masks with [MASK], WordPiece falls back to [UNK]).
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The original's limit on word length (`WordpieceTokenizer.max_input_chars_per_word`),
# counted in code points; longer words become [UNK].
MAX_INPUT_CHARS_PER_WORD = 200

# `BasicTokenizer._is_chinese_char`: the CJK blocks the original puts spaces around.
_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)


def convert_to_unicode(text):
    """Returns `text` as `str`; bytes are decoded as UTF-8, dropping invalid bytes.

    Same as the original (`errors="ignore"`).
    """
    if isinstance(text, str):
        return text
    if isinstance(text, bytes):
        return text.decode("utf-8", "ignore")
    raise ValueError("Unsupported string type: %s" % type(text))


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


def convert_by_vocab(vocab, items):
    """Converts a sequence of tokens or ids with a vocab (a KeyError on a miss, as the original)."""
    return [vocab[item] for item in items]


def convert_tokens_to_ids(vocab, tokens):
    return convert_by_vocab(vocab, tokens)


def convert_ids_to_tokens(inv_vocab, ids):
    return convert_by_vocab(inv_vocab, ids)


def check_special_tokens(vocab, vocab_file, required=("[UNK]", "[CLS]", "[SEP]", "[MASK]")):
    """Raises a ValueError naming `vocab_file` if a required special token is missing."""
    missing = [t for t in required if t not in vocab]
    if missing:
        raise ValueError("Vocabulary %s lacks the special token(s) %s; a BERT/ELECTRA vocab "
                         "has [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103."
                         % (vocab_file, ", ".join(missing)))


def _ranges(flags):
    """Turns a per-code-point boolean list into a list of inclusive (start, end) ranges."""
    flags = np.asarray(flags, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flags, [False]]).astype(np.int8)))
    return list(zip(edges[0::2].tolist(), (edges[1::2] - 1).tolist()))


def _re2_class(ranges):
    """An RE2 character class matching exactly the given code-point ranges."""
    parts = []
    for start, end in ranges:
        parts.append("\\x{%X}" % start if start == end else "\\x{%X}-\\x{%X}" % (start, end))
    return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=None)
def _unicode_classes():
    """RE2 classes for the original's character predicates (see `compute_unicode_classes`).

    Computing them takes ~1 s, so the classes for the Unicode version of the Python
    we develop with are stored in `_unicode_tables.py`; other versions compute them.
    """
    from pretrain_data import _unicode_tables
    if _unicode_tables.UNIDATA_VERSION == unicodedata.unidata_version:
        return dict(_unicode_tables.CLASSES)
    return compute_unicode_classes()


def write_unicode_tables(path):
    """Regenerates `_unicode_tables.py` for this Python's Unicode version."""
    with open(path, "w", encoding="utf-8") as f:
        f.write('"""Generated by `tokenization.write_unicode_tables`; do not edit."""\n\n')
        f.write("UNIDATA_VERSION = %r\n\nCLASSES = {\n" % unicodedata.unidata_version)
        for name, pattern in compute_unicode_classes().items():
            f.write("    %r: (\n" % name)
            for i in range(0, len(pattern), 80):
                f.write("        %r\n" % pattern[i:i + 80])
            f.write("    ),\n")
        f.write("}\n")


def compute_unicode_classes():
    """RE2 classes for the original's character predicates, from Python's unicodedata.

    Returns:
      A dict with RE2 character classes `control` (`_clean_text` deletes these:
      U+0000, U+FFFD and every category C* character except \\t \\n \\r; note C* includes
      Cn, the unassigned code points), `whitespace` (`_is_whitespace`: space, \\t \\n \\r
      and Zs; mapped to " "), `split_space` (characters Python's `str.split()` still
      splits on after cleaning: U+2028/U+2029), `nonspacing_mark` (Mn, dropped by
      `_run_strip_accents`), `punctuation` (`_is_punctuation`: ASCII 33-47, 58-64,
      91-96, 123-126 and category P*), `cjk`, and `strip` (what `str.strip()`
      removes: `str.isspace()` characters).
    """
    cps = np.arange(0x110000)
    cats = np.array(list(map(unicodedata.category, map(chr, range(0x110000)))))
    major = cats.astype("<U1")
    tnr = np.isin(cps, (9, 10, 13))
    control = ((major == "C") & ~tnr) | (cps == 0xFFFD)
    whitespace = (cats == "Zs") | tnr | (cps == 32)
    # Python's str.split() whitespace = isspace(); what survives cleaning is Zl/Zp.
    # (re's \s is exactly str.isspace() for str patterns, and much faster than a loop.)
    every_char = "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))
    isspace = np.zeros(0x110000, bool)
    isspace[[ord(m.group()) for m in re.finditer(r"\s", every_char)]] = True
    split_space = isspace & ~control & ~whitespace
    ascii_punct = (((cps >= 33) & (cps <= 47)) | ((cps >= 58) & (cps <= 64))
                   | ((cps >= 91) & (cps <= 96)) | ((cps >= 123) & (cps <= 126)))
    return {
        "control": _re2_class(_ranges(control)),
        "whitespace": _re2_class(_ranges(whitespace)),
        "split_space": _re2_class(_ranges(split_space | (cps == 32))),
        "nonspacing_mark": _re2_class(_ranges(cats == "Mn")),
        "punctuation": _re2_class(_ranges((major == "P") | ascii_punct)),
        "cjk": _re2_class(_CJK_RANGES),
        "strip": _re2_class(_ranges(isspace)),
    }


@functools.lru_cache(maxsize=None)
def _lowercase_fixups():
    """Code points that ICU's lower-casing (in TF) leaves alone but Python lower-cases.

    `tf.strings.lower(encoding="utf-8")` implements the full Unicode lower-casing that
    `str.lower()` does (including İ→i̇ and the context-dependent final sigma), but with
    TensorFlow's ICU data, which is older than Python 3.11's Unicode 14 (e.g. U+2C2F,
    U+A7C0, Vithkuqi). We ask ICU once, eagerly, for every character Python would change,
    and map the disagreements ourselves.

    Returns:
      (keys, values): int32 numpy arrays, code point -> Python's lower-case code point.
    """
    # One str.lower() call over every code point, compared position by position.
    # U+0130 (the only one-to-two mapping, İ -> i̇) and U+03A3 (whose result depends
    # on its neighbours) are left out: ICU handles both like Python.
    cps = np.array([cp for cp in range(0x110000)
                    if not 0xD800 <= cp <= 0xDFFF and cp not in (0x130, 0x3A3)], np.uint32)
    text = cps.tobytes().decode("utf-32-le")
    lowered = np.frombuffer(text.lower().encode("utf-32-le"), np.uint32)
    assert len(lowered) == len(cps), "a new one-to-many lower-case mapping"
    changed = cps[lowered != cps]
    candidates = [chr(cp) for cp in changed.tolist()]
    with tf.init_scope():
        icu = tf.strings.lower(tf.constant([c.encode("utf-8") for c in candidates]),
                               encoding="utf-8").numpy()
    keys, values = [], []
    for char, lowered_by_icu in zip(candidates, icu):
        if lowered_by_icu.decode("utf-8") != char.lower():
            if len(char.lower()) != 1 or lowered_by_icu.decode("utf-8") != char:
                raise NotImplementedError("ICU and Python lower-case %r differently" % char)
            keys.append(ord(char))
            values.append(ord(char.lower()))
    return np.array(keys, np.int32), np.array(values, np.int32)


class FullTokenizer(tf.Module):
    """Runs end-to-end tokenization: the original's BasicTokenizer then WordPiece.

    Mirrors the original API (`tokenize`, `convert_tokens_to_ids`,
    `convert_ids_to_tokens`, `vocab`, `inv_vocab`) and adds batched graph-mode methods
    (`tokenize_ids`; `basic_tokenizer.tokenize` for words) usable in `tf.function`s and SavedModels.

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
        return convert_by_vocab(self.vocab, tokens)

    def convert_ids_to_tokens(self, ids):
        return convert_by_vocab(self.inv_vocab, ids)

    # ---------------------------------------------------------------- batched API

    def tokenize_to_id_lists(self, texts):
        """Eagerly tokenizes a list of strings (str or UTF-8 bytes) into lists of ids.

        Args:
          texts: a sequence of `str` (or bytes, decoded as the original does).

        Returns:
          A list (one entry per text) of lists of int ids.
        """
        texts = [convert_to_unicode(t).encode("utf-8") for t in texts]
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
        self._classes = _unicode_classes()
        keys, values = _lowercase_fixups()
        self._lower_fixup_class = _re2_class([(k, k) for k in keys.tolist()]) if len(keys) else None
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
