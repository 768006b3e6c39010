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

A fine-tuned model serves one endpoint per task (`electra_tf.serving_tasks`). An endpoint
with one text kind names its text signature `<name>_text`.
"""

import dataclasses
import inspect
from typing import Callable

import tensorflow as tf

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
