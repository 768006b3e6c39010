"""Raw text to model features inside the serving graph, exactly as training featurised it."""

import tensorflow as tf

from pretrain_data import tokenization


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


def take_first(ragged, keep):
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
        vocab_size: the model's vocabulary size, which the vocabulary must have.
    """

    def __init__(self, vocab_file, max_seq_length, do_lower_case=True, strip_accents=True,
                 vocab_size=None):
        super().__init__(name="text_encoder")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3, got {max_seq_length}")
        vocab = tokenization.check_vocab(vocab_file, vocab_size)
        self.tokenizer = tokenization.FullTokenizer(vocab_file, do_lower_case, strip_accents)
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
            segments = [(take_first(ids_a, keep_a), 0), (take_first(ids_b, keep_b), 1)]
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
