"""Tokenisation parity with the original BERT `FullTokenizer`."""

import json
import pathlib
import random

import pytest
import tensorflow as tf

from pretrain_data import tokenization
from tests.pretrain_data import reference_tokenizer

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures"
VOCAB = str(FIXTURES / "vocab_tiny.txt")
MODES = [(True, True), (True, False), (False, True), (False, False)]


@pytest.fixture(scope="module")
def fixture_rows():
    path = FIXTURES / "tokenization" / "tiny_vocab_fulltokenizer.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


@pytest.fixture(scope="module")
def tokenizers():
    return {mode: tokenization.FullTokenizer(VOCAB, *mode) for mode in MODES}


@pytest.mark.parametrize("mode", MODES)
def test_fixture_parity_graph(fixture_rows, tokenizers, mode):
    rows = [r for r in fixture_rows if (r["do_lower_case"], r["strip_accents"]) == mode]
    tokenizer = tokenizers[mode]

    @tf.function
    def in_graph(texts):  # as a serving signature would call it
        return tokenizer.tokenize_ids(texts)

    ids = in_graph(tf.constant([r["text"] for r in rows])).to_list()
    mismatches = [(r["text"], r["ids"], got) for r, got in zip(rows, ids) if got != r["ids"]]
    assert not mismatches, mismatches[:3]


@pytest.mark.parametrize("mode", MODES)
def test_fixture_parity_eager(fixture_rows, tokenizers, mode):
    rows = [r for r in fixture_rows if (r["do_lower_case"], r["strip_accents"]) == mode]
    tokenizer = tokenizers[mode]
    for r in rows[:200]:  # one call per line: the original API
        tokens = tokenizer.tokenize(r["text"])
        assert tokens == r["tokens"], r["text"]
        assert tokenizer.convert_tokens_to_ids(tokens) == r["ids"]
        assert tokenizer.convert_ids_to_tokens(r["ids"]) == r["tokens"]
    got = tokenizer.tokenize_to_id_lists([r["text"] for r in rows])
    assert got == [r["ids"] for r in rows]


def test_fixture_covers_all_modes(fixture_rows):
    assert len(fixture_rows) == 1564
    assert {(r["do_lower_case"], r["strip_accents"]) for r in fixture_rows} == set(MODES)


# Hand-derived expectations (vocab_tiny: single letters, "##x" continuations, a few
# words such as "the", "an", "re", "paul"). Check each against the original's rules
# (docs/data.md, "Tokenizer").
HARD_CASES = [
    # accents: lower-case, NFD, drop Mn
    ("Ångström", True, True, ["an", "##g", "##s", "##t", "##r", "##o", "##m"]),
    # no lower-case: no accent stripping either (the original only strips after lowering)
    ("Éa", False, True, ["[UNK]"]),
    # the tiny vocab has no upper-case letters
    ("HeLLo", False, True, ["[UNK]"]),
    # CJK characters become words of their own; 中 is not in the vocab
    ("a中b", True, True, ["a", "[UNK]", "b"]),
    # emoji: category So, kept, not in the vocab
    ("a🙂b", True, True, ["[UNK]"]),
    # control and format characters are deleted, not word breaks (ZWSP, soft hyphen, BEL)
    ("a\u200bb\u00adc\x07d", True, True, ["a", "##b", "##c", "##d"]),
    # NBSP and ideographic space are spaces; U+2028 splits too
    ("a\u00a0b\u3000c\u2028d", True, True, ["a", "b", "c", "d"]),
    # U+FFFD and NUL are dropped
    ("a\ufffdb\x00c", True, True, ["a", "##b", "##c"]),
    # literal special tokens are not protected
    ("[SEP]", True, True, ["[", "s", "##e", "##p", "]"]),
    # ß stays ß under str.lower() (no case folding): not in the vocab
    ("Straße", True, True, ["[UNK]"]),
    # punctuation: ASCII symbols (even $ and ^, which are not Unicode P*) and P*
    ("a$b^c«d", True, True, ["a", "$", "b", "^", "c", "[UNK]", "d"]),
    # fullwidth letters are not folded (NFD, not NFKD)
    ("ａ", True, True, ["[UNK]"]),
]


@pytest.mark.parametrize("text,lower,strip,expected", HARD_CASES)
def test_hard_cases(tokenizers, text, lower, strip, expected):
    assert tokenizers[(lower, strip)].tokenize(text) == expected


def test_word_length_limit_is_200_characters(tokenizers):
    tokenizer = tokenizers[(True, True)]
    assert tokenizer.tokenize("a" * 200) == ["a"] + ["##a"] * 199
    assert tokenizer.tokenize("a" * 201) == ["[UNK]"]
    # 150 characters of 2 bytes each is 300 bytes but under the 200-character limit
    assert tokenizer.tokenize("é" * 150) == ["e"] + ["##e"] * 149
    assert tokenizer.tokenize("x " + "a" * 201 + " y") == ["x", "[UNK]", "y"]


def test_lowercase_matches_python_where_icu_is_older(tokenizers):
    basic = tokenizers[(True, False)].basic_tokenizer
    text = "\u2c2f\ua7c0 ΟΔΟΣ İ"  # Unicode 14 letters ICU in TF lacks, final sigma, İ
    words = basic.tokenize(tf.constant([text])).to_list()[0]
    assert [w.decode() for w in words] == text.lower().split()


def _random_text(rng):
    pool = ("aAbBcC éÉñÑßẞıİΣσς ǅ ﬁ ａ ½ ™ 中文 한국 😀 \u0301\u0308 \t\n\r "
            "\u00a0\u2009\u3000\u2028\u2029"
            "\x00\x07\x0b\x1c\x85\u200b\u00ad\ufeff\ufffd\ue000 .,;!?\"'()[]{}<>$^`~-_/\\@#%&*+=|"
            "«»—–…¿¡·「」 0123456789 the an re paul ##")
    return "".join(rng.choice(pool) for _ in range(rng.randint(0, 60)))


@pytest.mark.parametrize("mode", MODES)
def test_matches_reference_on_random_text(tokenizers, mode):
    rng = random.Random(1234)
    texts = [_random_text(rng) for _ in range(2000)]
    vocab = tokenizers[mode].vocab
    expected = [reference_tokenizer.full_tokenize(t, vocab, *mode) for t in texts]
    got = [tokenizers[mode].convert_ids_to_tokens(ids)
           for ids in tokenizers[mode].tokenize_to_id_lists(texts)]
    mismatches = [(t, e, g) for t, e, g in zip(texts, expected, got) if e != g]
    assert not mismatches, mismatches[:3]


def test_unusual_vocab_duplicates_blanks_and_joiner(tmp_path):
    # duplicate "ab" (the original keeps the LAST id), an empty line, "##" alone
    lines = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ab", "a", "##b", "", "##", "ab",
             "c", "##c", "##a"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vocab = tokenization.load_vocab(str(path))
    assert vocab["ab"] == 10 and vocab[""] == 8 and len(vocab) == 13
    tokenizer = tokenization.FullTokenizer(str(path))
    for text in ["ab", "abc", "cab", "a b c", "##", "a##b", "ba", ""]:
        expected = reference_tokenizer.full_tokenize(text, vocab)
        assert tokenizer.tokenize(text) == expected, text
    assert tokenizer.tokenize_to_id_lists(["abc"]) == [[10, 12]]


def test_mixed_case_without_lower_casing(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(["[UNK]", "He", "##LL", "##o", "he", "##ll", "é", "e"]) + "\n",
                    encoding="utf-8")
    cased = tokenization.FullTokenizer(str(path), do_lower_case=False)
    assert cased.tokenize("HeLLo é") == ["He", "##LL", "##o", "é"]
    uncased = tokenization.FullTokenizer(str(path), do_lower_case=True)
    assert uncased.tokenize("HeLLo é") == ["he", "##ll", "##o", "e"]
    assert tokenization.FullTokenizer(str(path), True, False).tokenize("é") == ["é"]


def test_load_vocab_strips_and_reports_bad_utf8(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"[PAD]\r\n  x  \n\xff\n")
    with pytest.raises(ValueError, match=r"vocab.txt, line 3: not valid UTF-8"):
        tokenization.load_vocab(str(path))
    path.write_bytes(b"[PAD]\r\n  x  \n")
    assert list(tokenization.load_vocab(str(path)).items()) == [("[PAD]", 0), ("x", 1)]
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        tokenization.load_vocab(str(tmp_path / "missing.txt"))


def test_saved_model_signature(tmp_path, tokenizers):
    module = tf.Module()
    module.tokenizer = tokenizers[(True, True)]
    module.serve = tf.function(lambda texts: module.tokenizer.tokenize_ids(texts).to_tensor(),
                               input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serve": module.serve})
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    out = loaded.signatures["serve"](tf.constant(["Café au lait", "naïve"]))
    ids = list(out.values())[0].numpy().tolist()
    assert ids == [[144, 172, 177, 176, 142, 192, 668, 180, 191],
                   [155, 172, 180, 193, 176, 0, 0, 0, 0]]


def test_stored_unicode_tables_are_current(tmp_path):
    import unicodedata
    from pretrain_data import _unicode_tables, unicode_classes
    if _unicode_tables.UNIDATA_VERSION != unicodedata.unidata_version:
        pytest.skip("tables are computed at run time for this Python")
    assert _unicode_tables.CLASSES == unicode_classes.compute_unicode_classes()
    unicode_classes.write_unicode_tables(str(tmp_path / "tables.py"))
    assert (tmp_path / "tables.py").read_text(encoding="utf-8") == pathlib.Path(
        _unicode_tables.__file__).read_text(encoding="utf-8")


def test_tokenize_lines_matches_tokenize_to_id_lists(tokenizers):
    tokenizer = tokenizers[(True, True)]
    lines = ["Hello, world!", "", "naïve café", "a\u2028b", "x" * 300]
    assert tokenizer.tokenize_lines(lines) == tokenizer.tokenize_to_id_lists(lines)
    with pytest.raises(ValueError, match="newline"):
        tokenizer.tokenize_lines(["a\nb"])


def test_invalid_utf8_bytes_are_dropped_like_the_original(tokenizers):
    tokenizer = tokenizers[(True, True)]
    raw = [b"caf\xc3\xa9\xff au\xe2\x82", b"\xed\xa0\x80naive", b"\x80"]
    expected = [tokenizer.convert_tokens_to_ids(tokenizer.tokenize(r.decode("utf-8", "ignore")))
                for r in raw]
    assert tokenizer.tokenize_ids(tf.constant(raw)).to_list() == expected
    assert [tokenizer.tokenize(r) for r in raw] == [tokenizer.convert_ids_to_tokens(e)
                                                   for e in expected]


def test_check_vocab(tmp_path):
    vocab = tokenization.check_vocab(VOCAB)
    assert vocab == tokenization.load_vocab(VOCAB) and vocab["[MASK]"] == 103
    assert tokenization.check_vocab(VOCAB, vocab_size=len(vocab)) == vocab
    with pytest.raises(ValueError, match=r"vocab_tiny.txt has %d tokens but vocab_size is 30522; "
                                         r"set \"vocab_size\": %d in --hparams"
                                         % (len(vocab), len(vocab))):
        tokenization.check_vocab(VOCAB, vocab_size=30522)
    with pytest.raises(FileNotFoundError, match="missing.txt: vocabulary not found"):
        tokenization.check_vocab(str(tmp_path / "missing.txt"))
    bad = tmp_path / "bad_vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n[CLS]\nthe\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad_vocab.txt lacks the special token\(s\) "
                                         r"\[SEP\], \[MASK\]"):
        tokenization.check_vocab(str(bad), vocab_size=4)
