"""The original's example building, restated plainly for the tests.

- `ReferenceBuilder`: the original `ExampleBuilder` segmentation (lists of sentences, no
  batching), to cross-check our batched builder example by example.
- `add_line_ids`, `add_blank_line`, `add_line`: the original's line-by-line calls, made
  with our `ExampleBuilder.add_lines`.
- `make_tf_example`: the `tf.train.Example` the original writes, built with the protobuf
  API, to check our fast serializer and to write test shards.
"""

import tensorflow as tf

from pretrain_data import examples


class ReferenceBuilder:

    def __init__(self, max_length, rng):
        self.rng = rng
        self.sentences = []
        self.length = 0
        self.max_length = max_length
        self.target_length = max_length

    def add_line_ids(self, ids):
        self.sentences.append(ids)
        self.length += len(ids)
        if self.length >= self.target_length:
            return self.create()
        return None

    def add_blank_line(self):
        if self.length != 0:
            return self.create()
        return self.add_line_ids([])

    def create(self):
        if self.rng.random() < 0.1:
            target = 100000
        else:
            target = (self.target_length - 3) // 2
        first, second = [], []
        for sentence in self.sentences:
            if (len(first) == 0 or len(first) + len(sentence) < target or
                    (len(second) == 0 and len(first) < target and self.rng.random() < 0.5)):
                first += sentence
            else:
                second += sentence
        first = first[:self.max_length - 2]
        second = second[:max(0, self.max_length - len(first) - 3)]
        self.sentences = []
        self.length = 0
        if self.rng.random() < 0.05:
            self.target_length = self.rng.randint(5, self.max_length)
        else:
            self.target_length = self.max_length
        return first, second


def _one(finished):
    assert len(finished) <= 1  # one line finishes at most one example
    return finished[0] if finished else None


def add_line_ids(builder, ids):
    """Adds one non-blank line, given as its ids; returns the finished example or None."""
    return _one(builder.add_lines(["line"], list(ids), [0, len(ids)]))


def add_blank_line(builder):
    """Adds a blank line; returns the finished example or None."""
    return _one(builder.add_lines([""], [], [0]))


def add_line(builder, line, tokenizer):
    """The original's `add_line(line)`: strip, tokenize with `tokenizer`, add."""
    line = line.strip().replace("\n", " ")
    if not line:
        return add_blank_line(builder)
    return add_line_ids(builder, tokenizer.convert_tokens_to_ids(tokenizer.tokenize(line)))


def make_tf_example(first_segment, second_segment, cls_id, sep_id, max_length):
    """The `tf.train.Example` the original writes, through the protobuf API."""
    features = examples.example_features(first_segment, second_segment, cls_id, sep_id,
                                         max_length)
    return tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        for name, values in zip(examples.FEATURE_NAMES, features)}))
