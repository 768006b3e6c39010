"""The serving graph of an export: raw text → features → model → named outputs.

`ServingModule` is the `tf.Module` that `export_saved_model` saves. It holds one
`TextEncoder` (the training tokenizer, the vocabulary as a SavedModel asset, [CLS]/[SEP]
assembly and truncation) and one or more `Endpoint`s (a network plus the function that
turns its outputs into the named tensors a client receives). Every endpoint gets two kinds
of signature:

- `<name>_text`: string inputs, tokenised inside the graph (TF core + tensorflow-text ops);
- `<name>_ids`: int32 `input_ids`, `input_mask`, `segment_ids` [batch, seq].

`serving_default` is the first text signature of the first endpoint. Batches are
variable length: a raw-text batch is padded to its longest member, at most
`max_seq_length` tokens.

A fine-tuned model serves one endpoint per task (`task_endpoint`): classification and
regression read one text or a pair, tagging reads whitespace-separated words and returns a
tag per word, QA reads a question and a context and returns the answer text and span. An
endpoint with one text kind names its text signature `<name>_text`.
"""

import dataclasses
import inspect
from typing import Callable

import tensorflow as tf
import tensorflow_text as tf_text

from pretrain_data import tokenization

# The text kinds an endpoint can read and the string inputs of their signature.
TEXT_INPUTS = {"single": ("text",), "pair": ("text_a", "text_b"), "masked": ("text",),
               "words": ("text",), "qa": ("question", "context")}
# Signature suffix per text kind when an endpoint reads several: `<name>_text`, `<name>_pair`.
TEXT_SUFFIX = {"single": "text", "pair": "pair", "masked": "text", "words": "text",
               "qa": "text"}


def pair_lengths(len_a, len_b, budget):
    """Token counts kept of a pair, as BERT's `_truncate_seq_pair` (ties pop from b).

    The original pops one token at a time from the longer side until `len_a + len_b <=
    budget`. The result in closed form: a shorter side of at most `budget // 2` is kept
    whole and the other gets the rest; otherwise a gets `ceil(budget / 2)` and b the rest.

    Args:
        len_a, len_b: int tensors [batch].
        budget: int, the tokens available (max_seq_length - 3).
    Returns:
        (keep_a, keep_b), int tensors [batch].
    """
    half_a, half_b = (budget + 1) // 2, budget // 2
    fits = len_a + len_b <= budget
    keep_a = tf.where(len_b <= half_b, tf.minimum(len_a, budget - len_b),
                      tf.where(len_a <= half_b, len_a, half_a))
    keep_a = tf.where(fits, len_a, keep_a)
    keep_b = tf.where(fits, len_b, tf.minimum(len_b, budget - keep_a))
    return keep_a, keep_b


def _take(ragged, keep):
    """The first `keep[i]` values of each row of a ragged [batch, (n)] tensor."""
    positions = tf.ragged.range(ragged.row_lengths())
    return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(keep, 1))


class TextEncoder(tf.Module):
    """Raw text to model features, exactly as training featurised text.

    `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` (segments 0 then 1), truncated to
    `max_seq_length` (a single text keeps its first `max_seq_length - 2` pieces; a pair is
    truncated longest-first, ties from b, as BERT's `_truncate_seq_pair`).

    Args:
        vocab_file: the WordPiece vocabulary of training; it becomes a SavedModel asset
            (`assets/vocab.txt`) that initialises the id → token table.
        max_seq_length: the model's maximum sequence length.
        do_lower_case, strip_accents: as `FullTokenizer`.
    """

    def __init__(self, vocab_file, max_seq_length, do_lower_case=True, strip_accents=True):
        super().__init__(name="text_encoder")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3, got {max_seq_length}")
        self.tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case, strip_accents)
        vocab = self.tokenizer.vocab
        tokenization.check_special_tokens(vocab, vocab_file)
        self.cls_id, self.sep_id, self.mask_id = (vocab[t] for t in ("[CLS]", "[SEP]", "[MASK]"))
        self.max_seq_length = max_seq_length
        self.vocab_asset = tf.saved_model.Asset(vocab_file)
        # Whole lines keyed by line number: id i is line i, as `load_vocab` numbers them.
        self.id_to_token = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocab_asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE), default_value="[UNK]")

    def tokens(self, input_ids):
        """WordPiece strings of int ids (any shape)."""
        return self.id_to_token.lookup(tf.cast(input_ids, tf.int64))

    def encode(self, text_a, text_b=None):
        """Features of a batch of texts (or pairs).

        Args:
            text_a: string tensor [batch].
            text_b: string tensor [batch], or None for single texts.
        Returns:
            dict of int32 `input_ids`, `input_mask`, `segment_ids` [batch, seq], seq the
            longest row of the batch (≤ max_seq_length).
        """
        return self.assemble(self.tokenizer.tokenize_ids(text_a),
                             None if text_b is None else self.tokenizer.tokenize_ids(text_b))

    def encode_masked(self, texts):
        """As `encode` for single texts in which each literal "[MASK]" is the [MASK] token.

        The tokenizer itself, like the original, splits "[MASK]" into "[", "mask", "]";
        here the text is cut at each "[MASK]", the parts are tokenised and [MASK] ids are
        put back between them.
        """
        parts = tf.strings.split(texts, "[MASK]")  # [batch, (parts)]
        pieces = self.tokenizer.tokenize_ids(parts.flat_values)  # [parts, (pieces)]
        # A [MASK] follows every part but the last of its text.
        part_index = tf.ragged.range(parts.row_lengths()).flat_values
        has_mask = tf.repeat(parts.row_lengths(), parts.row_lengths()) - 1 > part_index
        num_masks = tf.cast(has_mask, tf.int64)
        masks = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(num_masks)], tf.constant(self.mask_id, tf.int64)), num_masks)
        ids = parts.with_flat_values(tf.concat([pieces, masks], axis=1)).merge_dims(1, 2)
        return self.assemble(ids)

    def assemble(self, ids_a, ids_b=None):
        """[CLS] a [SEP] (b [SEP]) from ragged int64 piece ids, truncated; see `encode`."""
        if ids_b is None:
            ids_a = ids_a[:, :self.max_seq_length - 2]
            segments = [(ids_a, 0)]
        else:
            keep_a, keep_b = pair_lengths(ids_a.row_lengths(), ids_b.row_lengths(),
                                          self.max_seq_length - 3)
            segments = [(_take(ids_a, keep_a), 0), (_take(ids_b, keep_b), 1)]
        batch = tf.shape(ids_a.row_lengths(), out_type=tf.int64)[0]
        ones = tf.ones([batch, 1], tf.int64)
        ids, types = [ones * self.cls_id], [ones * 0]
        for piece_ids, segment in segments:
            ids += [piece_ids, ones * self.sep_id]
            types += [tf.zeros_like(piece_ids) + segment, ones * segment]
        ids = tf.concat(ids, axis=1)
        return {"input_ids": tf.cast(ids.to_tensor(), tf.int32),
                "input_mask": tf.cast(tf.ones_like(ids).to_tensor(), tf.int32),
                "segment_ids": tf.cast(tf.concat(types, axis=1).to_tensor(), tf.int32)}


@dataclasses.dataclass
class Endpoint:
    """One served network.

    Attributes:
        name: the signature prefix (`<name>_text`, `<name>_pair`, `<name>_ids`).
        outputs: int32 features dict [batch, seq] → dict of named output tensors. It is
            the whole per-model (per-task) piece of an export.
        text_kinds: which raw-text signatures to make: "single" (input `text`), "pair"
            (`text_a`, `text_b`), "masked" (`text`, with literal "[MASK]"s), "words"
            (`text`, whitespace-separated words), "qa" (`question`, `context`).
        model: the Keras model(s) whose variables `outputs` uses (tracked for saving).
        encode: optional; replaces `TextEncoder.encode` in the text signatures: string
            tensors (`TEXT_INPUTS` order) → (features, extras), extras being whatever
            `finish` needs (e.g. the map from word-pieces back to the text).
        finish: optional; (text outputs so far: features, `tokens` and `outputs`'s;
            extras) → more named outputs of the text signatures.
    """

    name: str
    outputs: Callable[[dict], dict]
    text_kinds: tuple
    model: object
    encode: Callable | None = None
    finish: Callable | None = None

    def text_signature_name(self, kind):
        """`<name>_text` for an endpoint with one text kind, else `<name>_<suffix>`."""
        suffix = "text" if len(self.text_kinds) == 1 else TEXT_SUFFIX[kind]
        return f"{self.name}_{suffix}"


def discriminator_endpoint(discriminator):
    """Per token: the replaced-token logit and probability; the features (float32).

    Outputs: `logits`, `replaced_probability` [batch, seq]; `sequence_output` [batch,
    seq, H]; `pooled_output` [batch, H] (the [CLS] vector: ELECTRA has no pooler). Padded
    positions are computed like the rest (the attention mask covers keys only): ignore
    them with `input_mask`.
    """
    def outputs(features):
        out = discriminator(features, training=False)
        logits = tf.cast(out["logits"], tf.float32)
        return {"logits": logits, "replaced_probability": tf.sigmoid(logits),
                "sequence_output": tf.cast(out["sequence_output"], tf.float32),
                "pooled_output": tf.cast(out["pooled_output"], tf.float32)}

    return Endpoint("discriminator", outputs, ("single", "pair"), discriminator)


def encoder_endpoint(encoder):
    """The encoder's features only (a model directory without a discriminator head)."""
    def outputs(features):
        out = encoder(features, training=False)
        return {k: tf.cast(out[k], tf.float32) for k in ("sequence_output", "pooled_output")}

    return Endpoint("encoder", outputs, ("single", "pair"), encoder)


def masked_positions(input_ids, mask_id):
    """Positions of [MASK] per row, padded with 0, and their weights (1 real, 0 padding).

    Returns:
        (`masked_lm_positions` int32 [batch, max masks], `masked_lm_weights` float32).
    """
    is_mask = tf.equal(input_ids, mask_id)
    positions = tf.ragged.boolean_mask(
        tf.broadcast_to(tf.range(tf.shape(input_ids)[1]), tf.shape(input_ids)), is_mask)
    return positions.to_tensor(), tf.cast(tf.ones_like(positions).to_tensor(), tf.float32)


def generator_endpoint(generator, mask_id, top_k, tokens):
    """The generator's top-k predictions at the [MASK] positions of each input.

    Outputs: `masked_lm_positions` int32 [batch, M] (M = most [MASK]s in a row of the
    batch, padded with 0), `masked_lm_weights` float32 [batch, M] (0 on padding),
    `top_k_ids` int32 [batch, M, k], `top_k_tokens` string and `top_k_probabilities`
    float32 [batch, M, k] (softmax over the vocabulary, highest first).

    Args:
        generator: a `Generator` or `TwoTowerGenerator`.
        mask_id: the [MASK] id.
        top_k: predictions per position.
        tokens: ids → token strings (`TextEncoder.tokens`).
    """
    def outputs(features):
        positions, weights = masked_positions(features["input_ids"], mask_id)
        if hasattr(generator, "encoder"):  # only the masked positions go through the head
            sequence_output = generator.encoder(features, training=False)["sequence_output"]
            logits = generator.head(sequence_output, mask_positions=positions)
        else:
            logits = tf.gather(generator(features, training=False)["logits"], positions,
                               batch_dims=1)
        probabilities, ids = tf.math.top_k(tf.nn.softmax(tf.cast(logits, tf.float32)), top_k)
        return {"masked_lm_positions": positions, "masked_lm_weights": weights,
                "top_k_ids": ids, "top_k_tokens": tokens(ids),
                "top_k_probabilities": probabilities}

    return Endpoint("generator", outputs, ("masked",), generator)


# ------------------------------------------------------------------ fine-tuned tasks
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
        features = encoder.assemble(query, _take(doc, tf.maximum(budget, 0)))
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


class ServingModule(tf.Module):
    """What is saved: the text encoder, the endpoints and their signatures.

    Args:
        text_encoder: a `TextEncoder`.
        endpoints: `Endpoint`s; the first one's first text kind is `serving_default`.
    """

    def __init__(self, text_encoder, endpoints):
        super().__init__(name="electra_serving")
        if not endpoints:
            raise ValueError("ServingModule needs at least one endpoint")
        self.text_encoder = text_encoder
        # Only the variables are tracked (Keras 3 variables wrap tf.Variables), not the Keras
        # models: saving those would also trace and store every layer's call, which is slow.
        unique = {id(v): v.value for e in endpoints for v in e.model.variables}
        self.model_variables = list(unique.values())
        self._signatures = {}
        # {signature name: "ids" or the text kind}: what each signature takes.
        self.input_kinds = {}
        for endpoint in endpoints:
            # The model is traced once, in the ids function; text signatures call it.
            serve_ids = self._ids_function(endpoint)
            for kind in endpoint.text_kinds:
                name = endpoint.text_signature_name(kind)
                self._signatures[name] = self._text_function(serve_ids, kind, endpoint)
                self.input_kinds[name] = kind
            self._signatures[f"{endpoint.name}_ids"] = serve_ids.get_concrete_function()
            self.input_kinds[f"{endpoint.name}_ids"] = "ids"
        default = endpoints[0].text_signature_name(endpoints[0].text_kinds[0])
        self._signatures["serving_default"] = self._signatures[default]
        self.input_kinds["serving_default"] = self.input_kinds[default]

    @property
    def signatures(self):
        """{signature name: concrete function}, for `tf.saved_model.save`."""
        return dict(self._signatures)

    @staticmethod
    def _ids_function(endpoint):
        """The endpoint on int32 features, as a `tf.function` of the three inputs."""
        spec = tf.TensorSpec([None, None], tf.int32)

        @tf.function(input_signature=[spec, spec, spec], autograph=False)
        def serve_ids(input_ids, input_mask, segment_ids):
            return endpoint.outputs({"input_ids": input_ids, "input_mask": input_mask,
                                     "segment_ids": segment_ids})

        return serve_ids

    def _text_function(self, serve_ids, kind, endpoint):
        """Raw text of `kind` → features, tokens and `serve_ids`' outputs (concrete)."""
        encoder = self.text_encoder
        encode = encoder.encode_masked if kind == "masked" else encoder.encode
        specs = [tf.TensorSpec([None], tf.string, name=n) for n in TEXT_INPUTS[kind]]

        def serve_text(*texts):
            features, extras = (endpoint.encode(*texts) if endpoint.encode
                                else (encode(*texts), None))
            outputs = {**features, "tokens": encoder.tokens(features["input_ids"]),
                       **serve_ids(**features)}
            if endpoint.finish:
                outputs.update(endpoint.finish(outputs, extras))
            return outputs

        # The Python parameter names become the signature's input names.
        function = tf.function(_named(serve_text, TEXT_INPUTS[kind]), input_signature=specs,
                               autograph=False)
        return function.get_concrete_function()


def _named(function, names):
    """`function(*args)` as a function whose positional parameters are called `names`."""
    params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]

    def wrapper(*args):
        return function(*args)

    wrapper.__signature__ = inspect.Signature(params)
    return wrapper
