"""Pretraining examples: the original's `ExampleBuilder` and a fast TFRecord encoder.

`ExampleBuilder` follows `build_pretraining_dataset.py` of the original rule for rule
(docs/data.md lists the rules), including the order in which it draws random numbers, but
takes lines that are already tokenized so that the caller can tokenize many lines in one
batched graph call. Randomness comes from an explicit `random.Random`, so a seed makes the output
reproducible (the original uses the unseeded global `random`).
"""

import random

from electra_common.protowire import field, varint

FEATURE_NAMES = ("input_ids", "input_mask", "segment_ids")

# Probability that an example gets a single segment (as in classification tasks).
SINGLE_SEGMENT_PROB = 0.1
# Probability that the next example aims at a random length in [5, max_length].
SHORT_TARGET_PROB = 0.05


class ExampleBuilder:
    """Given a stream of tokenized lines, creates pretraining examples.

    Args:
      max_length: `max_seq_length`, the length of every example.
      rng: a `random.Random`; None means a fresh, unseeded one (as the original).

    `add_lines` returns the finished examples, each `(first_segment, second_segment)`: two
    lists of token ids, already truncated, without [CLS]/[SEP].
    """

    def __init__(self, max_length, rng=None):
        if max_length < 5:
            # random.randint(5, max_length) below needs it, and [CLS] A [SEP] B [SEP] too.
            raise ValueError("max_seq_length must be at least 5, got %d" % max_length)
        self._rng = rng if rng is not None else random.Random()
        # The current "sentences" (lines) are kept as one list of their concatenated
        # token ids plus their lengths: a batch of lines then needs one slice per
        # example, not one list per line.
        self._current_tokens = []
        self._current_lengths = []
        self._current_length = 0
        self._max_length = max_length
        self._target_length = max_length
        self.tokens_added = 0

    def add_lines(self, items, values, row_splits):
        """Adds a batch of lines, as the original's `add_line` does line by line.

        A non-blank line is a sentence; an example is finished when the pending sentences
        reach the target length, or at a document boundary (a blank line or a file end)
        if they hold any token. A blank line with no pending token adds an empty
        sentence, which never changes an example nor draws a random number.

        Args:
          items: stripped lines (str, "" for a blank line) or None (the end of a file;
            like a blank line, a document boundary).
          values, row_splits: the token ids of the non-blank items, flat (a list of
            ints) with their offsets (`len(row_splits)` = number of non-blank items + 1),
            as `FullTokenizer.tokenize_lines(..., flat=True)` returns them.

        Returns:
          The list of finished examples.
        """
        examples = []
        lengths = self._current_lengths
        start = 0      # where this batch's part of the current sentences begins in `values`
        end = 0        # the end of the last line added
        k = 0
        for item in items:
            if item:
                k += 1
                length = row_splits[k] - end
                end = row_splits[k]
                lengths.append(length)
                self._current_length += length
                if self._current_length < self._target_length:
                    continue
            elif not self._current_length:
                lengths.append(0)
                continue
            # an example is complete (target reached, or a document boundary)
            tokens = values[start:end]
            if self._current_tokens:
                tokens = self._current_tokens + tokens
            examples.append(self._create_example(tokens))
            lengths = self._current_lengths
            start = end
        self._current_tokens += values[start:end]
        self.tokens_added += end
        return examples

    def _create_example(self, tokens):
        """Splits the current sentences into two segments and resets.

        Args:
          tokens: the token ids of the current sentences, concatenated.
        """
        rng = self._rng
        # small chance to only have one segment as in classification tasks
        if rng.random() < SINGLE_SEGMENT_PROB:
            first_segment_target_length = 100000
        else:
            # -3 due to not yet having [CLS]/[SEP] tokens in the input text
            first_segment_target_length = (self._target_length - 3) // 2

        # Decide each sentence's segment from the lengths alone; the segments are then
        # cut out of `tokens` as runs of consecutive sentences.
        first_length = second_length = 0
        runs = ([], [])      # (start, end) runs of `tokens` for the first/second segment
        run_segment, run_start, position = 0, 0, 0
        for length in self._current_lengths:
            # the sentence goes to the first segment if (1) the first segment is empty,
            # (2) the sentence doesn't put the first segment over length or (3) 50% of the
            # time when it does put the first segment over length. `and` short-circuits,
            # so the random number is drawn only when (3) is reached, as in the original.
            if (first_length == 0 or
                first_length + length < first_segment_target_length or
                (second_length == 0 and
                 first_length < first_segment_target_length and
                 rng.random() < 0.5)):
                first_length += length
                segment = 0
            else:
                second_length += length
                segment = 1
            if segment != run_segment:
                runs[run_segment].append((run_start, position))
                run_segment, run_start = segment, position
            position += length
        runs[run_segment].append((run_start, position))

        # trim to max_length while accounting for not-yet-added [CLS]/[SEP] tokens; the
        # overflow is discarded, not carried over (as the original)
        first_segment = _join_runs(tokens, runs[0], self._max_length - 2)
        second_segment = _join_runs(tokens, runs[1],
                                    max(0, self._max_length - len(first_segment) - 3))

        # prepare to start building the next example
        self._current_tokens = []
        self._current_lengths = []
        self._current_length = 0
        # small chance for random-length instead of max_length-length example
        if rng.random() < SHORT_TARGET_PROB:
            self._target_length = rng.randint(5, self._max_length)
        else:
            self._target_length = self._max_length
        return first_segment, second_segment


def _join_runs(tokens, runs, limit):
    """The first `limit` ids of the concatenated `tokens[start:end]` runs."""
    if len(runs) == 1:
        start, end = runs[0]
        return tokens[start:min(end, start + limit)]
    segment = []
    for start, end in runs:
        segment += tokens[start:end]
    return segment[:limit]


def example_features(first_segment, second_segment, cls_id, sep_id, max_length):
    """The three feature lists of the original's `_make_tf_example`.

    Returns:
      (input_ids, input_mask, segment_ids): lists of ints of length `max_length`:
      `[CLS] A [SEP]` (segment 0), then `B [SEP]` (segment 1) if B is non-empty,
      then zero padding.
    """
    input_ids = [cls_id] + first_segment + [sep_id]
    segment_ids = [0] * len(input_ids)
    if second_segment:
        input_ids += second_segment + [sep_id]
        segment_ids += [1] * (len(second_segment) + 1)
    input_mask = [1] * len(input_ids)
    input_ids += [0] * (max_length - len(input_ids))
    input_mask += [0] * (max_length - len(input_mask))
    segment_ids += [0] * (max_length - len(segment_ids))
    return input_ids, input_mask, segment_ids


class ExampleSerializer:
    """Serializes examples straight to `tf.train.Example` wire format, ~10x faster.

    Building `tf.train.Example` protos in Python costs ~30 µs per example, as much as
    tokenizing its 128 tokens. Here each id's varint comes from a precomputed table and
    the framing (which depends only on lengths) is cached. The bytes parse to exactly
    the same Example (packed int64 lists, as the proto declares them); the tests check
    this against `tf.train.Example` built with the protobuf API.

    Args:
      cls_id, sep_id: ids of [CLS] and [SEP].
      max_length: `max_seq_length`.
      vocab_size: size of the id -> bytes table (larger ids take a slower path).
    """

    def __init__(self, cls_id, sep_id, max_length, vocab_size=1 << 15):
        self._cls_id = cls_id
        self._sep_id = sep_id
        self._id_bytes = [varint(i) for i in range(max(vocab_size, cls_id + 1, sep_id + 1))]
        self._cls = self._id_bytes[cls_id]
        self._sep = self._id_bytes[sep_id]
        self._max_length = max_length
        self._zeros = b"\x00" * max_length
        self._ones = b"\x01" * max_length
        self._prefixes = {}
        self._example_prefixes = {}
        self._tails = {}
        # 0 and 1 are one byte each, so these lengths never change.
        self._mask_prefix = self._feature_prefix("input_mask", max_length)
        self._segment_prefix = self._feature_prefix("segment_ids", max_length)

    def _feature_prefix(self, name, payload_length):
        """The bytes of a `Features.feature` map entry that precede its packed values."""
        key = (name, payload_length)
        if key not in self._prefixes:
            int64_list_len = 1 + len(varint(payload_length)) + payload_length
            feature_len = 1 + len(varint(int64_list_len)) + int64_list_len
            name_field = field(1, name.encode())                            # map key (1)
            entry_len = len(name_field) + 1 + len(varint(feature_len)) + feature_len
            self._prefixes[key] = (b"\x0a" + varint(entry_len)             # Features.feature (1)
                                   + name_field
                                   + b"\x12" + varint(feature_len)         # map value (2)
                                   + b"\x1a" + varint(int64_list_len)      # Feature.int64_list (3)
                                   + b"\x0a" + varint(payload_length))     # Int64List.value (1)
        return self._prefixes[key]

    def _packed_ids(self, first, second):
        """`[CLS] A [SEP] (B [SEP])` as packed varints, each id's bytes from the table."""
        get = self._id_bytes.__getitem__
        if second:
            return b"".join((self._cls, b"".join(map(get, first)), self._sep,
                             b"".join(map(get, second)), self._sep))
        return b"".join((self._cls, b"".join(map(get, first)), self._sep))

    def _mask_and_segments(self, n_first, n_second):
        """The serialized `input_mask` and `segment_ids` entries (they depend on lengths only)."""
        pad = self._max_length - n_first - n_second
        tail = b"".join((self._mask_prefix, self._ones[:n_first + n_second], self._zeros[:pad],
                         self._segment_prefix, self._zeros[:n_first], self._ones[:n_second],
                         self._zeros[:pad]))
        if len(self._tails) < 100000:  # all that occur at 128; the common ones at 512
            self._tails[(n_first, n_second)] = tail
        return tail

    def serialize(self, first_segment, second_segment):
        """Returns the serialized Example for `[CLS] A [SEP] (B [SEP])`, zero-padded."""
        return self.serialize_batch([(first_segment, second_segment)])[0]

    def serialize_batch(self, examples):
        """Serializes a list of `(first_segment, second_segment)` pairs; returns bytes."""
        out = []
        zeros, s = self._zeros, self._max_length
        id_prefixes, tails, example_prefixes = self._prefixes, self._tails, self._example_prefixes
        for first, second in examples:
            n_first = len(first) + 2
            n_second = len(second) + 1 if second else 0
            try:
                body = self._packed_ids(first, second)
            except IndexError:  # an id beyond the precomputed table
                body = b"".join(varint(i) for i in [self._cls_id] + first + [self._sep_id]
                                + (second + [self._sep_id] if second else []))
            pad = s - n_first - n_second
            key = ("input_ids", len(body) + pad)
            id_prefix = id_prefixes.get(key) or self._feature_prefix(*key)
            tail = tails.get((n_first, n_second)) or self._mask_and_segments(n_first, n_second)
            features = b"".join((id_prefix, body, zeros[:pad], tail))
            prefix = example_prefixes.get(len(features))
            if prefix is None:
                prefix = example_prefixes[len(features)] = b"\x0a" + varint(len(features))
            out.append(prefix + features)
        return out
