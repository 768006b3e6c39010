"""A plain-Python re-statement of the original BERT tokenizer, for tests.

Used to cross-check our TF tokenizer on generated text and vocabularies beyond the
recorded fixture. Written from the original's rules (docs/data.md, "Tokenizer"); slow,
and that is fine.
"""

import unicodedata


def _is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _is_control(char):
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def _is_punctuation(char):
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def basic_tokenize(text, do_lower_case=True, strip_accents=True):
    chars = []
    for char in text:
        if ord(char) in (0, 0xFFFD) or _is_control(char):
            continue
        chars.append(" " if _is_whitespace(char) else char)
    text = "".join(" %s " % c if _is_chinese_char(ord(c)) else c for c in chars)
    words = []
    for token in text.strip().split():
        if do_lower_case:
            token = token.lower()
            if strip_accents:
                token = "".join(c for c in unicodedata.normalize("NFD", token)
                                if unicodedata.category(c) != "Mn")
        current = ""
        for char in token:
            if _is_punctuation(char):
                if current:
                    words.append(current)
                words.append(char)
                current = ""
            else:
                current += char
        if current:
            words.append(current)
    return words


def wordpiece(word, vocab, max_chars=200, unk="[UNK]"):
    if len(word) > max_chars:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while start < end:
            piece = ("##" if start > 0 else "") + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:
            return [unk]
        pieces.append(piece)
        start = end
    return pieces


def full_tokenize(text, vocab, do_lower_case=True, strip_accents=True):
    words = basic_tokenize(text, do_lower_case, strip_accents)
    return [piece for word in words for piece in wordpiece(word, vocab)]
