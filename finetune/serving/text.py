"""Raw text → features, and outputs back onto the text, for tagging and QA signatures.

`WordTagger` reads whitespace-separated words and gives a tag per word; `QAReader` reads a
question and a context and maps the decoded span back to characters of the context. Both
tokenise in the graph with the export's `TextEncoder`, as training featurised text.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.serving.text_encoder import take_first

# Python's `str.split()` separators (what a CoNLL line is split on), as an RE2 class.
WORD_SEPARATORS = r"[\t\n\x0b\x0c\r\x1c-\x1f\x{85}\p{Z}]+"
# The QA context's word separators (`finetune.tasks.qa_examples.is_whitespace`).
QA_SEPARATORS = r"[ \t\r\n\x{202f}]+"


def exclusive_cumsum(values, row_splits):
    """Per row of a ragged tensor given as flat `values` and `row_splits`: the sum of the
    row's earlier values (flat, like `values`)."""
    total = tf.cumsum(values, exclusive=True)
    starts = tf.repeat(row_splits[:-1], row_splits[1:] - row_splits[:-1])
    return total - tf.gather(total, starts)


def pad_to(tensor, length):
    """[B, n] → [B, length] with zeros on the right."""
    return tf.pad(tensor, [[0, 0], [0, length - tf.shape(tensor)[1]]])


class WordTagger:
    """Raw text → tagging features, and tags back per word (the text side of tagging).

    The text is split into words on whitespace (as the CoNLL reader's `str.split()`), each
    word word-pieced on its own and `[CLS] pieces [SEP]` assembled with `segment_ids` 1, as
    `TaggingTask.featurize`, including its truncation rule as written: word k (1-based) is
    kept only if the pieces of the words before it number at most S − #words − 4 (so with
    more than S − 3 words nothing is kept, and the input is `[SEP]` alone). The first
    word-piece of each kept word carries its tag.

    Args:
        text_encoder: the export's `TextEncoder`.
        tags: the tag names in id order.
    """

    def __init__(self, text_encoder, tags):
        self.text_encoder = text_encoder
        self.tags = tf.constant(list(tags))

    def encode(self, texts):
        """Features and (words [B, W] strings, the first piece of each [B, W], kept [B, W])."""
        encoder = self.text_encoder
        s = encoder.max_seq_length
        words = tf_text.regex_split(texts, WORD_SEPARATORS)
        flat_words = words.flat_values
        if not encoder.tokenizer.do_lower_case:  # the task lower-cases every word itself
            flat_words = tf.strings.lower(flat_words, encoding="utf-8")
        pieces = encoder.tokenizer.tokenize_ids(flat_words)  # [words, (pieces)]
        before = exclusive_cumsum(pieces.row_lengths(), words.row_splits)
        n_words = tf.repeat(words.row_lengths(), words.row_lengths())
        kept = before <= s - n_words - 4
        fits = words.row_lengths() + 3 <= s  # else even [CLS] is cut: the input is [SEP]
        word_pieces = tf.RaggedTensor.from_row_splits(pieces, words.row_splits)
        ids = tf.ragged.boolean_mask(word_pieces, words.with_flat_values(kept))
        ids = ids.merge_dims(1, 2)[:, :s - 2]  # beyond S only where the task itself fails
        ones = tf.ones_like(words.row_lengths())
        cls = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(tf.cast(fits, tf.int64))], tf.constant(encoder.cls_id,
                                                                          tf.int64)),
            tf.cast(fits, tf.int64))
        sep = tf.RaggedTensor.from_row_lengths(ones * encoder.sep_id, ones)
        ids = tf.concat([cls, ids, sep], axis=1)
        features = {"input_ids": tf.cast(ids.to_tensor(), tf.int32),
                    "input_mask": tf.cast(tf.ones_like(ids).to_tensor(), tf.int32)}
        features["segment_ids"] = features["input_mask"]
        tagged = kept & tf.repeat(fits, words.row_lengths())
        positions = words.with_flat_values(tf.cast(tf.where(tagged, before + 1, 0), tf.int32))
        tagged = words.with_flat_values(tagged)
        return features, (words.to_tensor(""), positions.to_tensor(0),
                          tagged.to_tensor(False))

    def finish(self, outputs, extras):
        """`words` [B, W] (padded with ""), `word_tagged` [B, W] (false where truncation
        dropped the word, and on padding), `word_logits` [B, W, n] (zeros where untagged),
        `word_label_id` [B, W] (−1 where untagged) and `word_label` [B, W] ("" where
        untagged): the outputs at each word's first word-piece."""
        words, positions, tagged = extras
        logits = tf.gather(outputs["logits"], positions, batch_dims=1)
        logits = tf.where(tagged[:, :, None], logits, 0.0)
        label_id = tf.where(tagged, tf.argmax(logits, -1, output_type=tf.int32), -1)
        return {"words": words, "word_tagged": tagged, "word_logits": logits,
                "word_label_id": label_id,
                "word_label": tf.where(tagged, tf.gather(self.tags, tf.maximum(label_id, 0)),
                                       "")}



class QAReader:
    """Question + context → one QA window, and the decoded span back to context text.

    The window is the original's first: `[CLS] question [SEP] context [SEP]`, the question
    cut to `max_query_length` pieces and the context to the S − |q| − 3 pieces that fit
    (`context_truncated` says when pieces were cut; the original would read them in further
    windows). The context is split into words on the original's whitespace (space, \\t,
    \\r, \\n, U+202F) and each word word-pieced on its own.

    The answer text is the original's `get_final_text` done on offsets: the context words
    the span covers, trimmed to the characters of the predicted pieces when that is exact
    (no [UNK] piece in those words, and each normalised word has as many characters as the
    original), else the whole words (the original's fallback); whitespace runs become one
    space, as the original joins words. `answer_start` / `answer_end` are character offsets
    into the context (`context[answer_start:answer_end]`), −1 without a span.

    Args:
        text_encoder: the export's `TextEncoder`.
        max_query_length: question pieces kept.
    """

    def __init__(self, text_encoder, max_query_length):
        self.text_encoder = text_encoder
        self.max_query_length = max_query_length

    def encode(self, question, context):
        """Features [B, S] and the word/piece maps `finish` needs."""
        encoder = self.text_encoder
        tokenizer = encoder.tokenizer
        context = tf.strings.unicode_transcode(context, "UTF-8", "UTF-8", errors="ignore")
        words, begins, ends = tf_text.regex_split_with_offsets(context, QA_SEPARATORS)
        pieces = tokenizer.tokenize_ids(words.flat_values)  # [words, (pieces)]
        doc = tf.RaggedTensor.from_row_splits(pieces, words.row_splits).merge_dims(1, 2)
        query = tokenizer.tokenize_ids(question)[:, :self.max_query_length]
        budget = encoder.max_seq_length - query.row_lengths() - 3
        features = encoder.assemble(query, take_first(doc, tf.maximum(budget, 0)))
        features = {k: pad_to(v, encoder.max_seq_length) for k, v in features.items()}
        # Per piece (flat over the batch): its word (flat), its characters once "##" is
        # dropped, and those of the word's earlier pieces.
        tokens = encoder.tokens(pieces.flat_values)
        piece_chars = (tf.strings.length(tokens, unit="UTF8_CHAR")
                       - 2 * tf.cast(tf.equal(tf.strings.substr(tokens, 0, 2), "##"), tf.int32))
        piece_word = tf.repeat(tf.range(tf.size(words.flat_values, tf.int64)),
                               pieces.row_lengths())  # flat word index of each piece
        word_chars = tf.reduce_sum(pieces.with_flat_values(piece_chars), 1)
        has_unk = tf.reduce_any(pieces.with_flat_values(
            tf.equal(pieces.flat_values, tokenizer.unk_id)), 1)
        exact = ~has_unk & tf.equal(word_chars, tf.strings.length(words.flat_values,
                                                                   unit="UTF8_CHAR"))
        extras = {"context": context, "words": words.flat_values, "begins": begins.flat_values,
                  "ends": ends.flat_values, "exact": exact, "piece_word": piece_word,
                  "piece_chars": piece_chars,
                  "chars_before": exclusive_cumsum(piece_chars, pieces.row_splits),
                  "doc_splits": doc.row_splits, "doc_offset": query.row_lengths() + 2,
                  "context_truncated": doc.row_lengths() > budget}
        return features, extras

    def finish(self, outputs, extras):
        """`answer_text` [B] ("" without a span), `answer_start`, `answer_end` [B] (int64
        character offsets, −1 without a span) and `context_truncated` [B]."""
        found = outputs["start_index"] >= 0

        def at(key, index):  # extras[key][index], safe on an empty batch of words
            values = extras[key]
            padded = tf.concat([values, tf.zeros([1], values.dtype)], 0)
            return tf.gather(padded, tf.where(found, index, tf.size(values, tf.int64)))

        def piece(position):  # input position → flat piece index
            return extras["doc_splits"][:-1] + tf.cast(position, tf.int64) - extras["doc_offset"]

        start_piece, end_piece = piece(outputs["start_index"]), piece(outputs["end_index"])
        first, last = at("piece_word", start_piece), at("piece_word", end_piece)
        inexact = tf.concat([[0], tf.cumsum(tf.cast(~extras["exact"], tf.int32))], 0)
        trim = found & tf.equal(tf.gather(inexact, tf.where(found, last + 1, 0)),
                                tf.gather(inexact, first))

        def bytes_of(word, chars):  # bytes of the first `chars` characters of `word`
            return tf.cast(tf.strings.length(tf.strings.substr(
                word, tf.zeros_like(chars), chars, unit="UTF8_CHAR")), tf.int64)

        prefix = at("chars_before", start_piece)
        through = at("chars_before", end_piece) + at("piece_chars", end_piece)
        start = at("begins", first) + tf.where(trim, bytes_of(at("words", first), prefix), 0)
        end = tf.where(trim, at("begins", last) + bytes_of(at("words", last), through),
                       at("ends", last))
        context = extras["context"]
        text = tf.strings.regex_replace(tf.strings.substr(context, start, end - start),
                                        QA_SEPARATORS, " ")

        def chars(byte_offset):
            prefix = tf.strings.substr(context, tf.zeros_like(byte_offset), byte_offset)
            return tf.where(found, tf.cast(tf.strings.length(prefix, unit="UTF8_CHAR"),
                                           tf.int64), -1)

        return {"answer_text": tf.where(found, text, ""), "answer_start": chars(start),
                "answer_end": chars(end), "context_truncated": extras["context_truncated"]}
