"""Tagging tasks: CoNLL chunking with BIOES labels."""

import os

import numpy as np
import tensorflow as tf

from finetune import metrics
from finetune.tasks.base import Example, Task


def bioes_tags(tags):
    """Re-encodes a tag sequence as BIOES through its spans (the original `get_tags`)."""
    out = ["O"] * len(tags)
    for start, end, kind in sorted(metrics.bioes_spans(tags)):
        for i in range(start, end + 1):
            out[i] = "I-" + kind
        out[end] = "E-" + kind
        out[start] = "B-" + kind
        if start == end:
            out[start] = "S-" + kind
    return out


class TaggingTask(Task):
    """A word-level tagging task read from CoNLL-style `<split>.txt` files.

    Word = first column, tag = last column, blank lines separate sentences, `-DOCSTART-`
    lines are skipped. Unlike the original, a last sentence without a trailing blank line
    is kept. The label map is every BIOES tag of every available split, sorted.
    """

    task_type = "tagging"

    def __init__(self, config, name, tokenizer):
        super().__init__(config, name, tokenizer)
        self._label_mapping = None

    def data_files(self, split):
        return [self.path(split + ".txt")]

    def featurize_settings(self):
        """The label map too: it comes from every split's tags, or a saved model."""
        return dict(super().featurize_settings(), **{
            f"{self.name}_labels": sorted(self.label_mapping, key=self.label_mapping.get)})

    def read_sentences(self, split):
        """[(words, tags)] of a split; debug mode stops after 101 sentences (original)."""
        path, = self.data_files(split)
        sentences, sentence = [], []
        with tf.io.gfile.GFile(path) as f:
            for line_number, line in enumerate(f, 1):
                fields = line.strip().split()
                if not fields:
                    if sentence:
                        sentences.append(tuple(map(list, zip(*sentence))))
                        sentence = []
                        if self.config.debug and len(sentences) > 100:
                            return sentences
                    continue
                if fields[0] == "-DOCSTART-":
                    continue
                if len(fields) < 2:
                    raise ValueError(f"{path}:{line_number}: a tagged line needs a word and "
                                     f"a tag, got {line.strip()!r}")
                sentence.append((fields[0], fields[-1]))
        if sentence:
            sentences.append(tuple(map(list, zip(*sentence))))
        return sentences

    @property
    def label_mapping(self):
        """{BIOES tag: id}, from every split present (train, dev, test), sorted."""
        if self._label_mapping is None:
            tags = set()
            for split in ("train", "dev", "test"):
                if tf.io.gfile.exists(os.path.join(self.config.raw_data_dir(self.name),
                                                   split + ".txt")):
                    for _, sentence_tags in self.read_sentences(split):
                        tags.update(bioes_tags(sentence_tags))
            self._label_mapping = {tag: i for i, tag in enumerate(sorted(tags))}
        return self._label_mapping

    @label_mapping.setter
    def label_mapping(self, mapping):
        """Sets the label map, e.g. the one saved with a fine-tuned model."""
        self._label_mapping = dict(mapping)

    @property
    def num_labels(self):
        return len(self.label_mapping)

    def get_examples(self, split):
        mapping = self.label_mapping
        return [Example(i, self.name, words, None, [mapping[t] for t in bioes_tags(tags)])
                for i, (words, tags) in enumerate(self.read_sentences(split))]

    def feature_specs(self):
        s = self.config.max_seq_length
        return {f"{self.name}_eid": ((), np.int32), f"{self.name}_labels": ((s,), np.int32),
                f"{self.name}_labels_mask": ((s,), np.float32),
                f"{self.name}_labeled_positions": ((s,), np.int32)}

    def score(self, examples, outputs, split="dev"):
        """Entity-level precision, recall and F1 ×100 over BIOES spans, and the loss per
        labelled word; words cut by truncation are not scored."""
        inverse = {i: tag for tag, i in self.label_mapping.items()}
        gold, predicted = [], []
        for labels, preds, mask in zip(outputs["labels"], outputs["predictions"],
                                       outputs["labels_mask"]):
            n = int(round(mask.sum()))
            gold.append([inverse[i] for i in labels[:n]])
            predicted.append([inverse[i] for i in preds[:n]])
        results = metrics.chunk_scores(gold, predicted)
        results["loss"] = float(outputs["loss"].sum() / max(1.0, outputs["labels_mask"].sum()))
        return results

    def featurize(self, examples, is_training=False):
        """Ids of `[CLS] words [SEP]`; the first word-piece of each word is labelled.

        `segment_ids` is 1 for every real token, as the original. Each word is word-pieced
        on its own, lower-cased and accent-stripped as the original `tokenize_and_align`.
        """
        s = self.config.max_seq_length
        words = [w.lower() for e in examples for w in e.text_a]
        pieces = iter(self.tokenizer.tokenize_to_id_lists(words))
        cls_id, sep_id = self.tokenizer.vocab["[CLS]"], self.tokenizer.vocab["[SEP]"]
        rows, positions = [], []
        for e in examples:
            word_ids = [[cls_id]] + [next(pieces) for _ in e.text_a] + [[sep_id]]
            ids, tagged = [], []
            for k, word in enumerate(word_ids):
                # The original's check, as written: (#words + 2) + len(ids) + 1 > S.
                if len(word_ids) + len(ids) + 1 > s:
                    ids.append(sep_id)
                    break
                if 0 < k < len(word_ids) - 1:
                    tagged.append(len(ids))
                ids += word
            rows.append((ids, [1] * len(ids)))
            positions.append(tagged)
        features = self._base_features(rows, [e.eid for e in examples])
        n = len(examples)
        labels = np.zeros((n, s), np.int32)
        mask = np.zeros((n, s), np.float32)
        labeled = np.zeros((n, s), np.int32)
        for i, (e, tagged) in enumerate(zip(examples, positions)):
            labels[i, :min(s, len(e.label))] = e.label[:s]
            labeled[i, :len(tagged)] = tagged
            mask[i, :len(tagged)] = 1.0
        features.update({f"{self.name}_labels": labels, f"{self.name}_labels_mask": mask,
                         f"{self.name}_labeled_positions": labeled})
        return features


class Chunking(TaggingTask):
    def __init__(self, config, tokenizer):
        super().__init__(config, "chunk", tokenizer)
