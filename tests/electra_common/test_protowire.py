"""Protobuf framing: the varint and length-delimited field encodings."""

import tensorflow as tf

from electra_common import protowire


def test_varints():
    assert protowire.varint(0) == b"\x00"
    assert protowire.varint(1) == b"\x01"
    assert protowire.varint(300) == b"\xac\x02"  # the protobuf documentation's example
    assert protowire.varint(2 ** 63) == b"\x80" * 9 + b"\x01"


def test_a_framed_message_parses_with_protobuf():
    # Int64List { repeated int64 value = 1 [packed] }, inside Feature { int64_list = 3 }.
    packed = b"".join(protowire.varint(v) for v in (1, 300, 2))
    feature = protowire.field(3, protowire.field(1, packed))
    parsed = tf.train.Feature.FromString(feature)
    assert list(parsed.int64_list.value) == [1, 300, 2]
