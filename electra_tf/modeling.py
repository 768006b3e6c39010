"""The ELECTRA networks as Keras functional models: encoder, generator, discriminator.

`build_models(config)` assembles them exactly as the original `PretrainingModel` does
(spec §4.2): by default the generator is a smaller encoder that shares the discriminator's
whole `Embeddings` block (the same layer object) and has its own projection.
"""

import dataclasses
import math

import keras
import keras_hub
from keras import ops

from electra_tf import config as config_lib
from electra_tf.layers import Embeddings, LAYER_NORM_EPSILON, TransformerLayer, activation
from electra_tf.layers import truncated_normal

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")


def model_inputs():
    """Symbolic int32 [batch, seq] inputs named as the original's features."""
    return {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in INPUT_NAMES}


@keras.saving.register_keras_serializable(package="electra_tf")
class Encoder(keras.Model):
    """The original `BertModel`: embeddings, optional projection, post-LN transformer.

    There is no pooler: `pooled_output` is the [CLS] vector (spec §3.3, caveat C6).

    Args:
        vocab_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
        hidden_act, hidden_dropout_prob, attention_probs_dropout_prob,
        max_position_embeddings, type_vocab_size, initializer_range: as in `BertConfig`.
        embedding_size: E; `embeddings_project` (E→H) exists only when E ≠ H.
        attention_direction: None, "ltr" (a query sees keys ≤ itself) or "rtl" (keys ≥
            itself), for Electric's two towers.
        embeddings: an `Embeddings` layer to share (tied generator); built here if None.
        dtype: a dtype policy name such as "mixed_bfloat16".
    Inputs: dict of int32 `input_ids`, `input_mask`, `segment_ids`, each [batch, seq].
    Outputs: dict with `sequence_output` [batch, seq, H], `pooled_output` [batch, H] and
        `embedding_output` [batch, seq, H] (after the projection).

    Example:
    ```python
    encoder = Encoder(vocab_size=1024, hidden_size=64, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=256, embedding_size=32)
    ids = np.ones((2, 8), "int32")
    out = encoder({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
    ```
    """

    def __init__(self, vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
                 intermediate_size, embedding_size=None, hidden_act="gelu",
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                 max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02,
                 attention_direction=None, embeddings=None, dtype=None, **kwargs):
        if attention_direction not in (None, "ltr", "rtl"):
            raise ValueError(f"attention_direction must be None, 'ltr' or 'rtl', "
                             f"got {attention_direction!r}")
        if embeddings is None:
            embeddings = Embeddings(
                vocab_size, embedding_size or hidden_size, max_position_embeddings,
                type_vocab_size, hidden_dropout_prob, initializer_range, dtype=dtype,
                name="embeddings")
        inputs = model_inputs()
        x = embeddings(inputs["input_ids"], inputs["segment_ids"])
        embeddings_project = None
        if embeddings.embedding_size != hidden_size:
            # No initializer in the original: the TF1 default, Glorot-uniform (caveat C11).
            embeddings_project = keras.layers.Dense(
                hidden_size, kernel_initializer="glorot_uniform", dtype=dtype,
                name="embeddings_project")
            x = embeddings_project(x)
        embedding_output = x
        mask = attention_mask(inputs["input_mask"], attention_direction)
        layers = [TransformerLayer(
            num_attention_heads, intermediate_size, hidden_act, hidden_dropout_prob,
            attention_probs_dropout_prob, initializer_range, dtype=dtype, name=f"layer_{i}")
            for i in range(num_hidden_layers)]
        for layer in layers:
            x, _ = layer(x, mask)
        outputs = {"sequence_output": x, "pooled_output": x[:, 0],
                   "embedding_output": embedding_output}
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        self.embeddings = embeddings
        self.embeddings_project = embeddings_project
        self.transformer_layers = layers
        self._init_args = dict(
            vocab_size=vocab_size, hidden_size=hidden_size,
            num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
            intermediate_size=intermediate_size, embedding_size=embedding_size,
            hidden_act=hidden_act, hidden_dropout_prob=hidden_dropout_prob,
            attention_probs_dropout_prob=attention_probs_dropout_prob,
            max_position_embeddings=max_position_embeddings,
            type_vocab_size=type_vocab_size, initializer_range=initializer_range,
            attention_direction=attention_direction)

    @classmethod
    def from_bert_config(cls, bert_config, **kwargs):
        """Builds an encoder from a `BertConfig`; kwargs go to the constructor."""
        return cls(**bert_config.to_dict(), **kwargs)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  # A functional model's own policy stays float32; its layers carry the precision.
                  "dtype": keras.dtype_policies.serialize(self.embeddings.dtype_policy),
                  **self._init_args}
        config["embedding_size"] = self.embeddings.embedding_size
        return config


def attention_mask(input_mask, direction=None):
    """[batch, 1 or seq, seq] mask over keys, optionally causal (spec §3.3).

    Only keys are masked: padded query positions are computed like any other (caveat C7).
    """
    mask = ops.expand_dims(input_mask, axis=1)
    if direction is None:
        return mask
    # ones[i, j] = 1 where query i may see key j.
    ones = ops.ones_like(ops.cast(mask, "int32")) * ops.expand_dims(ops.ones_like(input_mask), 2)
    rows = ops.cumsum(ops.ones_like(ones), axis=1)
    cols = ops.cumsum(ops.ones_like(ones), axis=2)
    allowed = cols <= rows if direction == "ltr" else cols >= rows
    return mask * ops.cast(allowed, mask.dtype)


def masked_lm_head(encoder, name):
    """`generator_predictions` / `cloze_predictions`: dense→E (GELU), LayerNorm, tied logits.

    keras-hub's `MaskedLMHead` is exactly the original's `get_token_logits` path (caveat
    C4): it projects to the embedding width, normalises, multiplies by the word-embedding
    table and adds `output_bias`. It runs in float32 so the logits are float32.
    """
    return keras_hub.layers.MaskedLMHead(
        token_embedding=encoder.embeddings.word_embeddings,
        intermediate_activation=activation("gelu"), layer_norm_epsilon=LAYER_NORM_EPSILON,
        kernel_initializer=truncated_normal(encoder._init_args["initializer_range"]),
        dtype="float32", name=name)


def all_positions(input_ids):
    """[batch, seq] int32 holding 0..seq-1 in every row."""
    return ops.cumsum(ops.ones_like(input_ids), axis=1) - 1


@keras.saving.register_keras_serializable(package="electra_tf")
class DiscriminatorHead(keras.layers.Layer):
    """`discriminator_predictions`: dense H→H with GELU, then dense H→1 (spec §4.5).

    Returns float32 logits [batch, seq]: positive means "replaced".
    """

    def __init__(self, hidden_size, hidden_act="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            hidden_size, activation=activation(hidden_act),
            kernel_initializer=truncated_normal(initializer_range), dtype=self.dtype_policy,
            name="dense")
        # Glorot-uniform: the original passes no initializer here (caveat C11).
        self.dense_1 = keras.layers.Dense(1, dtype="float32", name="dense_1")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.dense_1.build(tuple(input_shape[:-1]) + (self.hidden_size,))

    def call(self, sequence_output):
        return ops.squeeze(self.dense_1(self.dense(sequence_output)), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update({"hidden_size": self.hidden_size, "hidden_act": self.hidden_act,
                       "initializer_range": self.initializer_range})
        return config


class _EncoderTask(keras.Model):
    """A model made of one `Encoder` and a head: it serialises as that encoder."""

    def get_config(self):
        return {"name": self.name, "encoder": keras.saving.serialize_keras_object(self.encoder)}

    @classmethod
    def from_config(cls, config):
        config = dict(config, encoder=keras.saving.deserialize_keras_object(config["encoder"]))
        return cls(**config)


@keras.saving.register_keras_serializable(package="electra_tf")
class Discriminator(_EncoderTask):
    """The ELECTRA discriminator: an `Encoder` plus `discriminator_predictions`.

    Outputs: `sequence_output`, `pooled_output` and `logits` (float32 [batch, seq], the
    per-token replaced-token logit).
    """

    def __init__(self, encoder, **kwargs):
        inputs = model_inputs()
        outputs = dict(encoder(inputs))
        del outputs["embedding_output"]
        head = DiscriminatorHead(
            encoder._init_args["hidden_size"], encoder._init_args["hidden_act"],
            encoder._init_args["initializer_range"], dtype=encoder.dtype_policy,
            name="discriminator_predictions")
        outputs["logits"] = head(outputs["sequence_output"])
        kwargs.setdefault("name", "discriminator")
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.encoder = encoder
        self.head = head


@keras.saving.register_keras_serializable(package="electra_tf")
class Generator(_EncoderTask):
    """The ELECTRA generator: an `Encoder` plus the tied `generator_predictions` head.

    Outputs: `sequence_output` and `logits`, float32 vocabulary logits [batch, seq, V] at
    every position. Pretraining applies `head` to the masked positions only.
    """

    def __init__(self, encoder, **kwargs):
        inputs = model_inputs()
        outputs = encoder(inputs)
        head = masked_lm_head(encoder, "generator_predictions")
        logits = head(outputs["sequence_output"],
                      mask_positions=all_positions(inputs["input_ids"]))
        kwargs.setdefault("name", "generator")
        super().__init__(inputs=inputs,
                         outputs={"sequence_output": outputs["sequence_output"],
                                  "logits": logits}, **kwargs)
        self.encoder = encoder
        self.head = head


@keras.saving.register_keras_serializable(package="electra_tf")
class TwoTowerGenerator(keras.Model):
    """Electric's cloze generator (spec §4.6): a left-to-right and a right-to-left tower.

    The representation of position t is [LTR output at t−1 ; RTL output at t+1], with the
    original's wrap-around at both ends, fed to the tied `cloze_predictions` head.
    Outputs: `sequence_output` [batch, seq, 2·h_g] and `logits` [batch, seq, V].
    """

    def __init__(self, ltr_encoder, rtl_encoder, **kwargs):
        inputs = model_inputs()
        ltr = ltr_encoder(inputs)["sequence_output"]
        rtl = rtl_encoder(inputs)["sequence_output"]
        sequence_output = ops.concatenate(
            [ops.roll(ltr, 1, axis=1), ops.roll(rtl, -1, axis=1)], axis=-1)
        head = masked_lm_head(ltr_encoder, "cloze_predictions")
        logits = head(sequence_output, mask_positions=all_positions(inputs["input_ids"]))
        kwargs.setdefault("name", "two_tower_generator")
        super().__init__(inputs=inputs,
                         outputs={"sequence_output": sequence_output, "logits": logits},
                         **kwargs)
        self.ltr_encoder = ltr_encoder
        self.rtl_encoder = rtl_encoder
        self.head = head

    def get_config(self):
        return {"name": self.name,
                "ltr_encoder": keras.saving.serialize_keras_object(self.ltr_encoder),
                "rtl_encoder": keras.saving.serialize_keras_object(self.rtl_encoder),
                "shared_embeddings": self.ltr_encoder.embeddings is self.rtl_encoder.embeddings}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        ltr = keras.saving.deserialize_keras_object(config.pop("ltr_encoder"))
        rtl_config = config.pop("rtl_encoder")
        if config.pop("shared_embeddings", False):  # rebuild the towers' one shared block
            rtl = Encoder.from_config(dict(rtl_config["config"], embeddings=ltr.embeddings))
        else:
            rtl = keras.saving.deserialize_keras_object(rtl_config)
        return cls(ltr, rtl, **config)


@dataclasses.dataclass
class ElectraModels:
    """The networks of one pretraining configuration. A missing network is None."""

    config: object
    generator: keras.Model | None
    discriminator: keras.Model | None
    encoder: Encoder  # the discriminator's encoder (scope `electra`): what fine-tuning uses


def build_models(config, generator=True, discriminator_head=True):
    """Builds the networks exactly as the original `PretrainingModel` (spec §4.2).

    Args:
        config: a `PretrainingConfig`.
        generator: build the generator (False for a discriminator-only checkpoint).
        discriminator_head: build `discriminator_predictions` (False: encoder only).
    Returns:
        `ElectraModels`. Variants: the default tied-embedding generator; untied generator
        embeddings; `untied_generator=False` (the generator is the discriminator's encoder);
        the BERT objective (no discriminator); the uniform generator (no generator);
        Electric's two-tower generator.
    """
    bert_config = config_lib.get_bert_config(config)
    dtype = config.precision
    emb_size = config_lib.embedding_size(config, bert_config)
    encoder = Encoder.from_bert_config(bert_config, embedding_size=emb_size, dtype=dtype,
                                       name="electra")
    electra = config.electra_objective or config.electric_objective
    gen_model = None
    if generator and not config.uniform_generator:
        if config.two_tower_generator or (electra and config.untied_generator):
            gen_config = config_lib.get_generator_config(config, bert_config)
            shared = None if config.untied_generator_embeddings else encoder.embeddings

            def tower(name, direction=None):
                # Untied embeddings have the generator's own width and no projection.
                return Encoder.from_bert_config(
                    gen_config, embedding_size=emb_size if shared else None,
                    embeddings=shared, dtype=dtype,
                    attention_direction=direction, name=name)

            if config.two_tower_generator:
                gen_model = TwoTowerGenerator(tower("generator_ltr", "ltr"),
                                              tower("generator_rtl", "rtl"))
            else:
                gen_model = Generator(tower("generator"))
        else:
            gen_model = Generator(encoder)  # one network, or the BERT-style MLM
    disc_model = None
    if electra and discriminator_head:
        disc_model = Discriminator(encoder)
    return ElectraModels(config, gen_model, disc_model, encoder)


def count_params(models):
    """Trainable parameters over all networks, counting shared variables once."""
    seen = {}
    for model in (models.generator, models.discriminator, models.encoder):
        if model is not None:
            for v in model.trainable_weights:
                seen[id(v)] = math.prod(v.shape)
    return sum(seen.values()), len(seen)


def encoder_internals(encoder):
    """A model exposing each transformer layer's output and attention probabilities.

    For analysis and parity tests (the original's `get_all_encoder_layers()` and
    `attn_maps`). Inputs as `Encoder`; outputs `embedding_output`, `all_layer_outputs`
    (list of [batch, seq, H]) and `attention_probs` (list of float32 [batch, heads, seq, seq]).
    """
    nodes = [layer.output for layer in encoder.transformer_layers]
    return keras.Model(encoder.input, {
        "embedding_output": encoder.output["embedding_output"],
        "all_layer_outputs": [out for out, _ in nodes],
        "attention_probs": [probs for _, probs in nodes]})
