"""Extractive QA tasks: SQuAD 1.1/2.0 and MRQA, read and featurised as the original
(`finetune/qa/qa_tasks.py`; spec §8.1, §8.3).

A context is split on whitespace into "doc tokens" (with a char → word map); each doc
token is word-pieced; the query is truncated to `max_query_length`; the document is cut
into sliding windows `[CLS] query [SEP] doc [SEP]` of at most S − |q| − 3 doc tokens whose
start advances by min(window length, `doc_stride`). Each doc token is "max context" in the
window where min(left, right) + 0.01·length is largest (the first such window on ties).

Training examples whose answer cannot be recovered from the document (the offset does not
match the text, or the answer runs past the end) are skipped and counted, as the original
logged them; a malformed file is an error naming the file (and the line for JSONL).
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from finetune.tasks.base import Task

# Windows per example are numbered within `eid` = 1000·example + window (the original's).
MAX_WINDOWS = 1000


def is_whitespace(c):
    """The original's doc-token separators: space, \\t, \\r, \\n and U+202F."""
    return c in " \t\r\n\u202f"


def split_doc(text):
    """Splits a context on whitespace.

    Returns:
        (doc_tokens, char_to_word_offset): the words, and for every character of `text`
        the index of the word it belongs to (a space maps to the previous word; −1 before
        the first word).
    """
    doc_tokens, char_to_word_offset = [], []
    prev_is_whitespace = True
    for c in text:
        if is_whitespace(c):
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                doc_tokens.append(c)
            else:
                doc_tokens[-1] += c
            prev_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


@dataclasses.dataclass
class QAExample:
    """One question on one context.

    Args:
        eid: the example's index in its split (windows are keyed by 1000·eid + window).
        task_name: the task.
        qas_id: the SQuAD question id ("id"), None for MRQA.
        question_text: the question.
        doc_tokens: the context's whitespace-separated words.
        orig_answer_text: the training answer (the first one); "" if impossible.
        start_position, end_position: its first and last doc-token index (−1 if impossible).
        is_impossible: SQuAD 2.0 training questions without an answer.
        qid: the MRQA question id ("qid"), None for SQuAD.
        answers: every gold answer text (for scoring; empty for an unanswerable question).
    """

    eid: int
    task_name: str
    qas_id: str | None
    question_text: str
    doc_tokens: list
    orig_answer_text: str | None = None
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False
    qid: str | None = None
    answers: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class QAWindow:
    """One record: a window of an example's document (the original's eval-time features).

    `token_to_orig[i]` is the doc-token index of input position i (−1 outside the
    document) and `token_is_max_context[i]` whether this window is that token's max-context
    window; `start_position`/`end_position` are the training labels (0: [CLS]).
    """

    eid: int
    example_index: int
    doc_span_index: int
    input_ids: list
    segment_ids: list
    token_to_orig: list
    token_is_max_context: list
    start_position: int = 0
    end_position: int = 0
    is_impossible: int = 0


def doc_spans(n_tokens, max_tokens_for_doc, doc_stride):
    """The sliding windows over `n_tokens` doc sub-tokens, as (start, length) pairs."""
    spans, start = [], 0
    while start < n_tokens:
        length = min(n_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, doc_stride)
    return spans


def max_context_spans(spans, n_tokens):
    """For each doc sub-token, the index of its max-context window (−1 if in none).

    Score min(left, right) + 0.01·length; the first window wins ties (the original's
    `_check_is_max_context`, computed for all tokens at once).
    """
    best_score = np.full(n_tokens, -np.inf)
    best_span = np.full(n_tokens, -1)
    for index, (start, length) in enumerate(spans):
        position = np.arange(start, start + length)
        score = np.minimum(position - start, start + length - 1 - position) + 0.01 * length
        better = score > best_score[position]
        best_score[position[better]] = score[better]
        best_span[position[better]] = index
    return best_span


def _doc_pieces(doc_tokens, word_ids):
    """(doc word-piece ids, piece → word index, word → its first piece index)."""
    doc_ids, tok_to_orig, orig_to_tok = [], [], []
    for i, word in enumerate(doc_tokens):
        orig_to_tok.append(len(doc_ids))
        doc_ids += word_ids[word]
        tok_to_orig += [i] * len(word_ids[word])
    return doc_ids, tok_to_orig, orig_to_tok


def improve_answer_span(doc_ids, start, end, answer_ids):
    """The first (start, end) inside [start, end] whose sub-tokens are exactly the
    tokenised answer, else the input span (the original's `_improve_answer_span`)."""
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if doc_ids[new_start:new_end + 1] == answer_ids:
                return new_start, new_end
    return start, end


class QATask(Task):
    """An extractive QA task (spec §8.1, §8.3, §8.6).

    Each task class sets `NAME` (its name in `task_names`) and `V2` (SQuAD 2.0:
    unanswerable questions, null odds).

    Args:
        config: a `FinetuningConfig` (`max_seq_length`, `max_query_length`, `doc_stride`,
            the decoding fields, `debug`, the `qa_*_file` paths).
        tokenizer: a `pretrain_data.tokenization.FullTokenizer`.
    """

    task_type = "qa"
    NAME = None
    V2 = False

    def __init__(self, config, tokenizer):
        super().__init__(config, self.NAME, tokenizer)
        self.v2 = self.V2

    # ------------------------------------------------------------------ reading

    def get_examples(self, split):
        """The examples of `split` ("train", "dev" or "test"); see the subclasses."""
        raise NotImplementedError

    def get_test_splits(self):
        return ["test"]

    def add_paragraph(self, examples, paragraph, split, where):
        """Appends the questions on one context as `QAExample`s (eid = index in
        `examples`).

        Args:
            examples: the list to extend.
            paragraph: {"context": str, "qas": [...]} (SQuAD paragraph or MRQA line).
            split: answers are checked (and `is_impossible` read) for "train" only.
            where: the file (and line) for error messages.
        Returns:
            How many training questions were skipped because their answer cannot be
            recovered from the context.
        """
        context = _field(paragraph, "context", where)
        doc_tokens, char_to_word_offset = split_doc(context)
        failures = 0
        for qa in _field(paragraph, "qas", where):
            qas_id, qid = qa.get("id"), qa.get("qid")
            where_q = f"{where}: question {qas_id if qid is None else qid}"
            answers = qa.get("answers", [])
            example = QAExample(
                len(examples), self.name, qas_id, _field(qa, "question", where_q),
                doc_tokens, qid=qid,
                answers=[a if isinstance(a, str) else _field(a, "text", where_q)
                         for a in answers])
            if split == "train":
                if self.v2:
                    example.is_impossible = bool(_field(qa, "is_impossible", where_q))
                if example.is_impossible:
                    example.orig_answer_text, example.start_position = "", -1
                    example.end_position = -1
                elif not self._set_answer(example, qa, char_to_word_offset, where_q):
                    failures += 1
                    continue
            examples.append(example)
        return failures

    def _set_answer(self, example, qa, char_to_word_offset, where):
        """The training answer's doc-token span; False if it cannot be recovered."""
        if "detected_answers" in qa:  # MRQA
            answer = _first(qa["detected_answers"], where, "detected_answers")
            offset = _field(answer, "char_spans", where)[0][0]
        else:  # SQuAD
            answer = _first(qa.get("answers"), where, "answers")
            offset = _field(answer, "answer_start", where)
        text = _field(answer, "text", where)
        end = offset + len(text) - 1
        if not 0 <= offset <= end < len(char_to_word_offset):
            return False  # "End position is out of document!"
        start_position, end_position = char_to_word_offset[offset], char_to_word_offset[end]
        actual = " ".join(example.doc_tokens[start_position:end_position + 1]).lower()
        if start_position < 0 or " ".join(text.split()).lower() not in actual:
            return False  # "Could not find answer"
        example.orig_answer_text = text
        example.start_position, example.end_position = start_position, end_position
        return True

    def _log_counts(self, split, examples, failures):
        skipped = (f", {failures} training questions skipped (answer not found in the "
                   "context)" if split == "train" else "")
        print(f"{self.name} {split}: {len(examples)} examples created{skipped}")

    # ------------------------------------------------------------------ featurisation

    def windows(self, examples, is_training):
        """Every example's windows, in order (spec §8.3).

        Args:
            examples: `QAExample`s.
            is_training: add the answer positions (start/end 0 when the answer is not
                inside the window or the question is impossible).
        Returns:
            A list of `QAWindow`, example by example.
        """
        queries = self.tokenizer.tokenize_to_id_lists([e.question_text for e in examples])
        word_ids = self._word_ids(examples)
        answer_ids = (self.tokenizer.tokenize_to_id_lists(
            [e.orig_answer_text or "" for e in examples]) if is_training else None)
        windows = []
        for index, (example, query) in enumerate(zip(examples, queries)):
            windows += self._example_windows(
                index, example, query[:self.config.max_query_length], word_ids,
                answer_ids[index] if is_training else None)
        return windows

    def _word_ids(self, examples):
        """{doc token: its word-piece ids}, tokenised in one batch (words are independent
        under whitespace splitting, so this equals the original's per-token calls)."""
        words = list({w: None for e in examples for w in e.doc_tokens})
        return dict(zip(words, self.tokenizer.tokenize_to_id_lists(words)))

    def _example_windows(self, index, example, query, word_ids, answer_ids):
        """One example's `QAWindow`s; `answer_ids` (training only) is the tokenised
        answer, None at evaluation."""
        doc_ids, tok_to_orig, orig_to_tok = _doc_pieces(example.doc_tokens, word_ids)
        answer = None
        if answer_ids is not None and not example.is_impossible:
            start = orig_to_tok[example.start_position]
            end = (orig_to_tok[example.end_position + 1] - 1
                   if example.end_position < len(example.doc_tokens) - 1 else len(doc_ids) - 1)
            answer = improve_answer_span(doc_ids, start, end, answer_ids)
        max_tokens_for_doc = self.config.max_seq_length - len(query) - 3
        if max_tokens_for_doc < 1 and doc_ids:
            raise ValueError(
                f"{self.name} example {example.qas_id or example.qid}: max_seq_length "
                f"{self.config.max_seq_length} leaves no room for the document after a "
                f"{len(query)}-token query (lower max_query_length)")
        spans = doc_spans(len(doc_ids), max_tokens_for_doc, self.config.doc_stride)
        if len(spans) > MAX_WINDOWS:
            raise ValueError(f"{self.name} example {example.qas_id or example.qid}: "
                             f"{len(spans)} windows; eids allow at most {MAX_WINDOWS}")
        best_span = max_context_spans(spans, len(doc_ids))
        cls_id, sep_id = self.tokenizer.vocab["[CLS]"], self.tokenizer.vocab["[SEP]"]
        prefix = [cls_id] + query + [sep_id]
        windows = []
        for span_index, (start, length) in enumerate(spans):
            doc = slice(start, start + length)
            window = QAWindow(
                eid=MAX_WINDOWS * example.eid + span_index, example_index=index,
                doc_span_index=span_index, input_ids=prefix + doc_ids[doc] + [sep_id],
                segment_ids=[0] * len(prefix) + [1] * (length + 1),
                token_to_orig=[-1] * len(prefix) + tok_to_orig[doc] + [-1],
                token_is_max_context=[False] * len(prefix)
                + (best_span[doc] == span_index).tolist() + [False])
            if answer_ids is not None:
                window.is_impossible = int(example.is_impossible)
                if answer is not None and start <= answer[0] and answer[1] < start + length:
                    window.start_position = answer[0] - start + len(prefix)
                    window.end_position = answer[1] - start + len(prefix)
            windows.append(window)
        return windows

    def featurize(self, examples, is_training):
        """One record per window: the shared inputs and `<task>_{eid,start_positions,
        end_positions,is_impossible}` [N] int32 (labels 0 when not training, as the
        original's eval records)."""
        windows = self.windows(examples, is_training)
        features = self._base_features([(w.input_ids, w.segment_ids) for w in windows],
                                       [w.eid for w in windows])
        for key, attribute in (("start_positions", "start_position"),
                               ("end_positions", "end_position"),
                               ("is_impossible", "is_impossible")):
            features[f"{self.name}_{key}"] = np.asarray(
                [getattr(w, attribute) for w in windows], np.int32).reshape(len(windows))
        return features

    def feature_specs(self):
        return {f"{self.name}_{key}": ((), np.int32) for key in
                ("eid", "start_positions", "end_positions", "is_impossible")}

    def build_head(self):
        from finetune.qa.head import QAHead
        return QAHead.from_config_for_task(self.config, self.name,
                                           name=f"task_specific_{self.name}")

    # ------------------------------------------------------------------ decoding, scoring

    def question_id(self, example):
        """The id predictions are keyed by: `qas_id` for SQuAD, `qid` for MRQA."""
        return example.qas_id if "squad" in self.name else example.qid

    def predict_answers(self, examples, outputs):
        """Decodes the head's outputs (spec §8.6).

        Args:
            examples: the `QAExample`s the outputs were computed for.
            outputs: {head output: array [N, ...]} for their records, in record order.
        Returns:
            ({question id: best non-null answer text}, {question id: null odds} for
            SQuAD 2.0, else None).
        """
        from finetune.qa import decoding

        windows = self.windows(examples, is_training=False)
        predictions = decoding.decode(examples, windows, outputs, self.config, self.v2,
                                      self.tokenizer.inv_vocab)
        answers = {self.question_id(e): p.text for e, p in zip(examples, predictions)}
        null_odds = ({self.question_id(e): float(p.null_odds)
                      for e, p in zip(examples, predictions)} if self.v2 else None)
        return answers, null_odds

    def score(self, examples, outputs, split="dev"):
        """Decodes, writes `qa_preds_file`, `qa_na_file` (v2) and `qa_eval_file` as JSON,
        and returns the official metrics (v2 at `qa_na_threshold`)."""
        from finetune.qa import scoring

        answers, null_odds = self.predict_answers(examples, outputs)
        _write_json(self.config.qa_preds_file(self.name), answers)
        if self.v2:
            _write_json(self.config.qa_na_file(self.name), null_odds)
            results = scoring.squad_v2(squad_dataset(examples), answers, null_odds,
                                       self.config.qa_na_threshold)
        elif "squad" in self.name:
            results = scoring.squad_v1(squad_dataset(examples), answers)
        else:
            results = scoring.mrqa({e.qid: e.answers for e in examples}, answers)
        _write_json(self.config.qa_eval_file(self.name), results)
        return results


class SQuADTask(QATask):
    """SQuAD JSON (`<split>.json`, `<split>-debug.json` in debug mode)."""

    def get_examples(self, split):
        path = self.path(split + ("-debug" if self.config.debug else "") + ".json")
        with tf.io.gfile.GFile(path, "r") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: malformed JSON: {e}") from None
        examples, failures = [], 0
        for article in _field(data, "data", path):
            for paragraph in _field(article, "paragraphs", path):
                failures += self.add_paragraph(examples, paragraph, split, path)
        self._log_counts(split, examples, failures)
        return examples


class MRQATask(QATask):
    """MRQA JSONL (`<split>.jsonl`): a header line, then one context per line; debug mode
    reads the first 11 lines."""

    def get_examples(self, split):
        path = self.path(split + ".jsonl")
        examples, failures = [], 0
        with tf.io.gfile.GFile(path, "r") as f:
            for i, line in enumerate(f):
                if self.config.debug and i > 10:
                    break
                if i == 0 or not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{i + 1}: malformed JSON: {e}") from None
                if "header" not in entry:
                    failures += self.add_paragraph(examples, entry, split, f"{path}:{i + 1}")
        self._log_counts(split, examples, failures)
        return examples


class SQuAD(SQuADTask):
    NAME, V2 = "squad", True


class SQuADv1(SQuADTask):
    NAME = "squadv1"


class NewsQA(MRQATask):
    NAME = "newsqa"


class NaturalQuestions(MRQATask):
    NAME = "naturalqs"


class SearchQA(MRQATask):
    NAME = "searchqa"


class TriviaQA(MRQATask):
    NAME = "triviaqa"


def tfds_qa_examples(task, split, data_dir=None):
    """A SQuAD split from tensorflow-datasets (`squad/v2.0` for "squad", else
    `squad/v1.1`) as `QAExample`s, with the file reader's rules.

    Args:
        task: a `SQuADTask`.
        split: "train" or "dev" (tfds "validation").
        data_dir: the tfds data directory (None: tfds' default); never downloads.
    """
    import tensorflow_datasets as tfds

    name = "squad/v2.0" if task.v2 else "squad/v1.1"
    if split not in ("train", "dev"):
        raise ValueError(f"tfds {name} has the splits train and dev, not {split!r}")
    dataset = tfds.load(name, split="validation" if split == "dev" else split,
                        data_dir=data_dir, download=False)
    examples, failures = [], 0
    for record in tfds.as_numpy(dataset):
        answers = record["answers"]
        qa = {"id": record["id"].decode("utf-8"),
              "question": record["question"].decode("utf-8"),
              "is_impossible": bool(record.get("is_impossible", False)),
              "answers": [{"text": t.decode("utf-8"), "answer_start": int(s)}
                          for t, s in zip(answers["text"], answers["answer_start"])]}
        paragraph = {"context": record["context"].decode("utf-8"), "qas": [qa]}
        failures += task.add_paragraph(examples, paragraph, split, f"tfds {name} {split}")
    task._log_counts(split, examples, failures)
    return examples


def squad_dataset(examples):
    """The gold answers of `examples` as a SQuAD JSON "data" list, for the scorers."""
    return [{"paragraphs": [{"qas": [
        {"id": e.qas_id, "answers": [{"text": t} for t in e.answers]} for e in examples]}]}]


def _field(entry, key, where):
    if not isinstance(entry, dict) or key not in entry:
        raise ValueError(f"{where}: expected a field {key!r}")
    return entry[key]


def _first(answers, where, key):
    """The first training answer; a question with none (and not impossible) is an error."""
    if not answers:
        raise ValueError(f"{where}: a training question has no {key} and is not marked "
                         "is_impossible")
    return answers[0]


def _write_json(path, value):
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(value, f, indent=1)
