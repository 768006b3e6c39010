"""The segmentation rules of the original ExampleBuilder, rule by rule."""

import random

import pytest
import tensorflow as tf

from pretrain_data import examples
from tests.pretrain_data.reference_builder import (
    ReferenceBuilder, add_blank_line, add_line_ids, make_tf_example)


class ScriptedRandom:
    """Returns scripted values, so each random decision of the builder is chosen by hand."""

    def __init__(self, randoms, randints=()):
        self.randoms = list(randoms)
        self.randints = list(randints)

    def random(self):
        return self.randoms.pop(0)

    def randint(self, low, high):
        value = self.randints.pop(0)
        assert low <= value <= high
        return value


def sentence(start, length):
    return list(range(start, start + length))


def test_two_segments_split_at_half_target():
    # S=16: first-segment target (16-3)//2 = 6. Sentences 4,4,4,4 (16 >= 16 emits).
    rng = ScriptedRandom([0.5, 0.9, 0.9])  # not single; 50% rule says B; no short target
    builder = examples.ExampleBuilder(16, rng)
    s = [sentence(1000 + 10 * i, 4) for i in range(4)]
    assert add_line_ids(builder, s[0]) is None
    assert add_line_ids(builder, s[1]) is None
    assert add_line_ids(builder, s[2]) is None
    first, second = add_line_ids(builder, s[3])
    # s0 -> A (A empty); s1: 4+4 < 6 false, B empty and 4 < 6 -> random 0.9 -> B;
    # s2, s3: A is 4, 4+4 < 6 false, B non-empty -> B. Truncate B to 16-4-3 = 9.
    assert first == s[0]
    assert second == (s[1] + s[2] + s[3])[:9]
    assert rng.randoms == []


def test_single_segment_ten_percent_case():
    rng = ScriptedRandom([0.05, 0.9])  # < 0.1: first-segment target 100000
    builder = examples.ExampleBuilder(16, rng)
    add_line_ids(builder, sentence(0, 8))
    first, second = add_line_ids(builder, sentence(100, 8))
    assert first == (sentence(0, 8) + sentence(100, 8))[:14] and second == []


def test_fifty_percent_rule_keeps_over_long_sentence_in_a():
    rng = ScriptedRandom([0.5, 0.2, 0.9])  # 0.2 < 0.5: s1 goes to A although it overflows
    builder = examples.ExampleBuilder(16, rng)
    add_line_ids(builder, sentence(0, 4))
    add_line_ids(builder, sentence(10, 4))
    add_line_ids(builder, sentence(20, 4))
    first, second = add_line_ids(builder, sentence(30, 4))
    # A = s0+s1 (8 >= 6), then s2, s3: not < 6 and A not < target -> B (no random drawn)
    assert first == sentence(0, 4) + sentence(10, 4)
    assert second == (sentence(20, 4) + sentence(30, 4))[:16 - 8 - 3]


def test_short_sentence_after_b_started_still_goes_to_a():
    rng = ScriptedRandom([0.5, 0.9, 0.9])
    builder = examples.ExampleBuilder(16, rng)
    add_line_ids(builder, sentence(0, 2))
    add_line_ids(builder, sentence(10, 11))   # 2+11 >= 6, B empty, 2 < 6, 0.9 -> B
    first, second = add_line_ids(builder, sentence(30, 3))  # 2+3 < 6 -> A
    assert first == sentence(0, 2) + sentence(30, 3)
    assert second == sentence(10, 11)[:16 - 5 - 3]


def test_document_boundary_emits_short_example_and_short_target():
    rng = ScriptedRandom([0.5, 0.01, 0.5, 0.9], randints=[7])
    builder = examples.ExampleBuilder(16, rng)
    assert add_blank_line(builder) is None       # nothing accumulated: no example
    add_line_ids(builder, sentence(0, 3))
    first, second = add_blank_line(builder)      # document boundary
    assert (first, second) == (sentence(0, 3), [])
    # 0.01 < 0.05: next target is randint(5, 16) = 7, so 4 + 4 >= 7 emits
    assert add_line_ids(builder, sentence(10, 4)) is None
    first, second = add_line_ids(builder, sentence(20, 4))
    # first-segment target (7-3)//2 = 2: s0 -> A; s1: 4+4 < 2 no; B empty but 4 < 2 false -> B
    assert (first, second) == (sentence(10, 4), sentence(20, 4))
    assert rng.randoms == [] and rng.randints == []


def test_truncation_uses_max_length_and_discards_overflow():
    rng = ScriptedRandom([0.05, 0.9, 0.5, 0.9])
    builder = examples.ExampleBuilder(8, rng)
    first, second = add_line_ids(builder, sentence(0, 20))
    assert first == sentence(0, 6) and second == []
    # the overflow (6..19) is not carried over into the next example
    add_line_ids(builder, sentence(100, 2))
    assert add_blank_line(builder) == (sentence(100, 2), [])


def test_example_features_layout():
    ids, mask, segments = examples.example_features([5, 6], [7], 101, 102, 8)
    assert ids == [101, 5, 6, 102, 7, 102, 0, 0]
    assert mask == [1, 1, 1, 1, 1, 1, 0, 0]
    assert segments == [0, 0, 0, 0, 1, 1, 0, 0]
    ids, mask, segments = examples.example_features([5], [], 101, 102, 5)
    assert (ids, mask, segments) == ([101, 5, 102, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0])


@pytest.mark.parametrize("first,second", [([], []), ([1, 2, 3], []), ([1] * 10, [200, 30000]),
                                          ([129, 16384, 2], [127, 128])])
def test_fast_serializer_matches_tf_example(first, second):
    serializer = examples.ExampleSerializer(101, 102, 16)
    fast = tf.train.Example.FromString(serializer.serialize(first, second))
    assert fast == make_tf_example(first, second, 101, 102, 16)


def test_fast_serializer_batch_with_large_ids():
    serializer = examples.ExampleSerializer(101, 102, 12)
    batch = [([2**40, 5], [2**20]), ([], []), ([127, 128, 16383, 16384], [0, 2**31 - 1])]
    for raw, (first, second) in zip(serializer.serialize_batch(batch), batch):
        expected = make_tf_example(first, second, 101, 102, 12)
        assert tf.train.Example.FromString(raw) == expected


def _stream_examples(rng, n_examples, max_length=128, sentence_length=10):
    """An endless single document of fixed-length sentences."""
    builder = examples.ExampleBuilder(max_length, rng)
    out = []
    next_id = 0
    while len(out) < n_examples:
        example = add_line_ids(builder, sentence(next_id, sentence_length))
        next_id += sentence_length
        if example:
            out.append(example)
    return out


def test_share_of_single_segment_and_short_examples():
    out = _stream_examples(random.Random(0), 4000)
    single = sum(1 for _, second in out if not second) / len(out)
    # Single-segment examples come from the 10% case (a full-length example never
    # ends up without B otherwise here).
    assert 0.085 < single < 0.115
    # Short examples come from the 5% random target (full-length ones are truncated to 128).
    short = sum(1 for a, b in out if len(a) + 2 + (len(b) + 1 if b else 0) < 128) / len(out)
    assert 0.035 < short < 0.065


def test_seed_reproducible():
    assert _stream_examples(random.Random("s"), 50) == _stream_examples(random.Random("s"), 50)
    assert _stream_examples(random.Random("s"), 50) != _stream_examples(random.Random("t"), 50)


def test_rejects_tiny_max_length():
    with pytest.raises(ValueError, match="at least 5"):
        examples.ExampleBuilder(4)


@pytest.mark.parametrize("max_length", [5, 16, 128])
def test_batched_builder_matches_reference_example_by_example(max_length):
    rng = random.Random(42)
    # a stream of lines: None = end of file, "" = blank line, else a line of n tokens
    items, id_lists, next_id = [], [], 0
    for _ in range(20000):
        kind = rng.random()
        if kind < 0.03:
            items.append(None)
        elif kind < 0.15:
            items.append("")
        else:
            n = rng.choice([0, 1, 2, 5, 10, 30, 70, 200])
            items.append("line")
            id_lists.append(list(range(next_id, next_id + n)))
            next_id += n
    reference = ReferenceBuilder(max_length, random.Random(7))
    expected = []
    ids = iter(id_lists)
    for item in items:
        example = reference.add_line_ids(next(ids)) if item else reference.add_blank_line()
        if example:
            expected.append(example)
    builder = examples.ExampleBuilder(max_length, random.Random(7))
    got = []
    for batch_start in range(0, len(items), 997):  # batches cut anywhere
        batch = items[batch_start:batch_start + 997]
        n_before = sum(1 for item in items[:batch_start] if item)
        lists = id_lists[n_before:n_before + sum(1 for item in batch if item)]
        values = [i for ids_ in lists for i in ids_]
        splits = [0]
        for ids_ in lists:
            splits.append(splits[-1] + len(ids_))
        got += builder.add_lines(batch, values, splits)
    assert got == expected
    assert len(expected) > 500
    assert builder.tokens_added == next_id
