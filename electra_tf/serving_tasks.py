"""Serving endpoints of fine-tuned tasks (`electra_tf.serving.Endpoint`s), one per task.

Classification and regression read one text or a pair; tagging reads whitespace-separated
words and returns a tag per word; QA reads a question and a context, decodes the best span
in the graph as `finetune/qa/decoding.py` does for one window, and returns the answer text
and its character span.
"""

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.serving import Endpoint, take_first

# GLUE tasks whose examples have one text (spec §8.1); every other GLUE task reads a pair.
SINGLE_SENTENCE_TASKS = ("cola", "sst")
# Python's `str.split()` separators (what a CoNLL line is split on), as an RE2 class.
WORD_SEPARATORS = r"[\t\n\x0b\x0c\r\x1c-\x1f\x{85}\p{Z}]+"
# The QA context's word separators (`finetune.tasks.qa.is_whitespace`).
QA_SEPARATORS = r"[ \t\r\n\x{202f}]+"


def task_endpoint(task, model, text_encoder, config):
    """The endpoint of one task of a fine-tuned model.

    Args:
        task: a `finetune.tasks` task (`name`, `task_type`, `label_list` / `label_mapping`,
            `min_value` / `max_value` for regression).
        model: the `finetune.heads.FinetuningModel` (`encoder`, `heads[task.name]`).
        text_encoder: the export's `TextEncoder`.
        config: the `FinetuningConfig` (QA: `max_query_length`, decoding fields).
    Returns:
        An `Endpoint` named after the task.
    """
    head = model.heads[task.name]
    if task.task_type == "classification":
        kind = "single" if task.name in SINGLE_SENTENCE_TASKS else "pair"
        return Endpoint(task.name, classification_outputs(model.encoder, head, task.label_list),
                        (kind,), model)
    if task.task_type == "regression":
        return Endpoint(task.name, regression_outputs(model.encoder, head, task.min_value,
                                                      task.max_value), ("pair",), model)
    if task.task_type == "tagging":
        tags = [t for t, _ in sorted(task.label_mapping.items(), key=lambda kv: kv[1])]
        tagger = WordTagger(text_encoder, tags)
        return Endpoint(task.name, tagging_outputs(model.encoder, head, tags), ("words",),
                        model, tagger.encode, tagger.finish)
    if task.task_type == "qa":
        reader = QAReader(text_encoder, config.max_query_length)
        return Endpoint(task.name, qa_outputs(model.encoder, head, config, task.v2),
                        ("qa",), model, reader.encode, reader.finish)
    raise ValueError(f"task {task.name}: cannot serve task_type {task.task_type!r} (expected "
                     "classification, regression, tagging or qa)")


def _cls_logits(encoder, head, features):
    """The head's `dense` on the [CLS] vector (its dropout is off at inference), float32."""
    pooled = encoder(features, training=False)["pooled_output"]
    return head.dense(tf.cast(pooled, tf.float32))


def classification_outputs(encoder, head, label_names):
    """`logits`, `probabilities` [B, n] (float32), `label_id` [B] (int32, the argmax, as the
    original's `predictions`) and `label` [B] (its name, e.g. "entailment")."""
    names = tf.constant(list(label_names))

    def outputs(features):
        logits = _cls_logits(encoder, head, features)
        label_id = tf.argmax(logits, -1, output_type=tf.int32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits),
                "label_id": label_id, "label": tf.gather(names, label_id)}

    return outputs


def regression_outputs(encoder, head, min_value, max_value):
    """`prediction` [B]: the head's output on the training scale ((y − min) / max, STS: y / 5,
    the original's `predictions`); `score` [B]: back on the task's scale (STS: 0–5)."""
    def outputs(features):
        prediction = tf.squeeze(_cls_logits(encoder, head, features), -1)
        return {"prediction": prediction, "score": prediction * max_value + min_value}

    return outputs


def tagging_outputs(encoder, head, tags):
    """Per token: `logits` [B, S, n] (float32), `label_id` [B, S] (int32) and `label` [B, S]
    (the tag, e.g. "B-NP"). Training labels only the first word-piece of each word, with
    `segment_ids` 1 on every real token: the ids signature needs the same layout."""
    names = tf.constant(list(tags))

    def outputs(features):
        sequence_output = encoder(features, training=False)["sequence_output"]
        logits = head.dense(tf.cast(sequence_output, tf.float32))
        label_id = tf.argmax(logits, -1, output_type=tf.int32)
        return {"logits": logits, "label_id": label_id, "label": tf.gather(names, label_id)}

    return outputs


def _exclusive_cumsum(values, row_splits):
    """Per row of a ragged tensor given as flat `values` and `row_splits`: the sum of the
    row's earlier values (flat, like `values`)."""
    total = tf.cumsum(values, exclusive=True)
    starts = tf.repeat(row_splits[:-1], row_splits[1:] - row_splits[:-1])
    return total - tf.gather(total, starts)


def _pad_to(tensor, length):
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
        before = _exclusive_cumsum(pieces.row_lengths(), words.row_splits)
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


def qa_outputs(encoder, head, config, v2):
    """The QA head on one window per example, and the best span decoded from it.

    Features are padded to `max_seq_length` first (the beam needs `beam_size` positions,
    and training records were that long). The window is read as the original reads a
    window: context tokens are the segment-1 tokens before the final [SEP], and every one
    is in its max-context window (there is only one).

    Outputs: the head's `start_logits` [B, S], `answerable_logit` [B] and beam
    (`start_top_log_probs`, `start_top_index` [B, k], `end_top_log_probs`, `end_top_index`
    [B, k, k], joint prediction) or `end_logits` [B, S]; the decoded `start_index`,
    `end_index` [B] (int32 positions in the input, −1 if no candidate survives the
    original's drop rules), `score` [B] (start + end log-prob, or logits when not joint; 0
    without a candidate, as the original's "empty" entry); `no_answer_logit` [B] (the
    original's null odds: the answerable logit, positive means "no answer"; without the
    classifier, start + end logit at [CLS] minus `score`), `no_answer_probability` [B]
    (sigmoid of the answerable logit, with the classifier) and, for SQuAD 2.0,
    `has_answer` [B]: a span was found and `no_answer_logit` ≤ `qa_na_threshold`.
    """
    s = config.max_seq_length
    name = head.task_name

    def outputs(features):
        features = {k: _pad_to(v, s) for k, v in features.items()}
        batch = tf.shape(features["input_ids"])[:1]
        labels = {f"{name}_{k}": tf.zeros(batch, tf.int32)
                  for k in ("start_positions", "end_positions", "is_impossible")}
        out = head(encoder(features, training=False), {**features, **labels}, training=False)
        keep = (("start_top_log_probs", "start_top_index", "end_top_log_probs",
                 "end_top_index") if config.joint_prediction else ("end_logits",))
        result = {k: out[k] for k in ("start_logits", "answerable_logit") + keep}
        start, end, score = best_span(out, features, config)
        result.update(start_index=start, end_index=end, score=score)
        if config.answerable_classifier:
            result["no_answer_logit"] = out["answerable_logit"]
            result["no_answer_probability"] = tf.sigmoid(out["answerable_logit"])
        elif v2:
            result["no_answer_logit"] = (out["start_logits"][:, 0] + out["end_logits"][:, 0]
                                         - score)
        if v2:
            result["has_answer"] = (start >= 0) & (
                result["no_answer_logit"] <= config.qa_na_threshold)
        return result

    return outputs


def best_span(head_outputs, features, config):
    """The best candidate span of one window per example (spec §8.6,
    `finetune.qa.decoding.window_candidates` in graph).

    Candidates: the beam (joint prediction) or the n-best starts × n-best ends; dropped as
    the original drops them (past the tokens, start at [CLS], not a context token, end
    before start, longer than `max_answer_length`). The best has the highest start + end
    score; on equal scores the first in the original's loop order.

    Returns:
        (start_index, end_index, score): [B] int32 positions (−1 when no candidate is left)
        and float32 scores (0 then).
    """
    if config.joint_prediction:
        starts, ends = head_outputs["start_top_index"], head_outputs["end_top_index"]
        start_scores = head_outputs["start_top_log_probs"]
        end_scores = head_outputs["end_top_log_probs"]
    else:
        start_scores, starts = tf.math.top_k(head_outputs["start_logits"], config.n_best_size)
        end_scores, end_index = tf.math.top_k(head_outputs["end_logits"], config.n_best_size)
        shape = [tf.shape(starts)[0], config.n_best_size, config.n_best_size]
        ends = tf.broadcast_to(end_index[:, None, :], shape)
        end_scores = tf.broadcast_to(end_scores[:, None, :], shape)
    length = tf.reduce_sum(features["input_mask"], -1, keepdims=True)  # [B, 1]
    position = tf.range(tf.shape(features["input_ids"])[1])[None]
    is_context = (tf.equal(features["segment_ids"], 1) & (position < length - 1))
    starts = tf.broadcast_to(starts[:, :, None], tf.shape(ends))
    valid = ((starts < length[:, :, None]) & (ends < length[:, :, None]) & (starts != 0)
             & tf.gather(is_context, starts, batch_dims=1)
             & tf.gather(is_context, ends, batch_dims=1)
             & (ends >= starts) & (ends - starts + 1 <= config.max_answer_length))
    scores = start_scores[:, :, None] + end_scores
    flat = tf.reshape(tf.where(valid, scores, -float("inf")), [tf.shape(scores)[0], -1])
    best = tf.argmax(flat, -1, output_type=tf.int32)
    found = tf.reduce_any(valid, [1, 2])

    def pick(values):
        return tf.gather(tf.reshape(values, tf.shape(flat)), best, batch_dims=1)

    return (tf.where(found, pick(starts), -1), tf.where(found, pick(ends), -1),
            tf.where(found, pick(scores), 0.0))


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
        features = {k: _pad_to(v, encoder.max_seq_length) for k, v in features.items()}
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
                  "chars_before": _exclusive_cumsum(piece_chars, pieces.row_splits),
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
