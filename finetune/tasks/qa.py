"""Extractive QA tasks: SQuAD 1.1/2.0 and MRQA, read and featurised as the original
(the original's `finetune/qa/qa_tasks.py`).

Examples are read by `qa_examples` (a question on a whitespace-split context) and cut into
records by `qa_windows` (sliding windows over the context's word-pieces); the answers are
decoded by `finetune.qa.decoding` and scored by `finetune.qa.scoring`. A malformed file is
an error naming the file (and the line for JSONL).
"""

import json

import numpy as np
import tensorflow as tf

from electra_common import files
from finetune.tasks.base import Task
from finetune.tasks.qa_examples import add_paragraph, json_field, squad_dataset
from finetune.tasks.qa_windows import (
    MAX_WINDOWS, QAWindow, doc_pieces, doc_spans, improve_answer_span, max_context_spans)


class QATask(Task):
    """An extractive QA task.

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

    def featurize_settings(self):
        return dict(super().featurize_settings(), max_query_length=self.config.max_query_length,
                    doc_stride=self.config.doc_stride)

    def add_paragraph(self, examples, paragraph, split, where, seen_ids=None):
        """`qa_examples.add_paragraph` for this task: appends the questions on one context
        to `examples`; returns how many training questions were skipped."""
        return add_paragraph(examples, paragraph, self.name, self.v2, split, where,
                             seen_ids, "id" if "squad" in self.name else "qid")

    def log_counts(self, split, examples, failures):
        skipped = (f", {failures} training questions skipped (answer not found in the "
                   "context)" if split == "train" else "")
        print(f"{self.name} {split}: {len(examples)} examples created{skipped}")

    # ------------------------------------------------------------------ featurisation

    def windows(self, examples, is_training):
        """Every example's windows, in order.

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
        doc_ids, tok_to_orig, orig_to_tok = doc_pieces(example.doc_tokens, word_ids)
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
        """Decodes the head's outputs (`finetune.qa.decoding`).

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
        files.write_json(self.config.qa_preds_file(self.name), answers)
        if self.v2:
            files.write_json(self.config.qa_na_file(self.name), null_odds)
            results = scoring.squad_v2(squad_dataset(examples), answers, null_odds,
                                       self.config.qa_na_threshold)
        elif "squad" in self.name:
            results = scoring.squad_v1(squad_dataset(examples), answers)
        else:
            results = scoring.mrqa({e.qid: e.answers for e in examples}, answers)
        files.write_json(self.config.qa_eval_file(self.name), results)
        return results


class SQuADTask(QATask):
    """SQuAD JSON (`<split>.json`, `<split>-debug.json` in debug mode)."""

    def data_files(self, split):
        if self.config.data_source == "tfds":
            return []
        return [self.path(split + ("-debug" if self.config.debug else "") + ".json")]

    def get_examples(self, split):
        if self.config.data_source == "tfds":
            return tfds_qa_examples(self, split, self.config.tfds_data_dir)
        path, = self.data_files(split)
        with tf.io.gfile.GFile(path, "r") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: malformed JSON: {e}") from None
        examples, failures, seen_ids = [], 0, {}
        for i, article in enumerate(json_field(data, "data", path)):
            for j, paragraph in enumerate(json_field(article, "paragraphs", path)):
                failures += self.add_paragraph(examples, paragraph, split,
                                               f"{path}: article {i + 1}, paragraph {j + 1}",
                                               seen_ids)
        self.log_counts(split, examples, failures)
        return examples


class MRQATask(QATask):
    """MRQA JSONL (`<split>.jsonl`): a header line, then one context per line; debug mode
    reads the first 11 lines."""

    def data_files(self, split):
        return [self.path(split + ".jsonl")]

    def get_examples(self, split):
        path, = self.data_files(split)
        examples, failures, seen_ids = [], 0, {}
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
                    failures += self.add_paragraph(examples, entry, split, f"{path}:{i + 1}",
                                                   seen_ids)
        self.log_counts(split, examples, failures)
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
    examples, failures, seen_ids = [], 0, {}
    for i, record in enumerate(tfds.as_numpy(dataset)):
        answers = record["answers"]
        qa = {"id": record["id"].decode("utf-8"),
              "question": record["question"].decode("utf-8"),
              "is_impossible": bool(record.get("is_impossible", False)),
              "answers": [{"text": t.decode("utf-8"), "answer_start": int(s)}
                          for t, s in zip(answers["text"], answers["answer_start"])]}
        paragraph = {"context": record["context"].decode("utf-8"), "qas": [qa]}
        failures += task.add_paragraph(examples, paragraph, split,
                                       f"tfds {name} {split}: record {i + 1}", seen_ids)
    task.log_counts(split, examples, failures)
    return examples


