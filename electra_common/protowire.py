"""The protobuf wire format, as far as the project writes it by hand.

Building protos through the Python protobuf API costs ~30 µs a message, which dominates
writing pretraining records; the few messages written in bulk are framed here instead
(https://protobuf.dev/programming-guides/encoding/): varints and length-delimited fields.
"""


def varint(value):
    """The base-128 varint encoding of a non-negative int."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number, payload):
    """One length-delimited field (wire type 2): key, length, payload bytes."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload
