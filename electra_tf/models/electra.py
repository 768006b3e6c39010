"""The ELECTRA networks: generator, discriminator, Electric's two-tower generator.

`build_models(config)` assembles them exactly as the original `PretrainingModel`: by
default the generator is a smaller encoder that shares the discriminator's whole
`Embeddings` block (the same layer object) and has its own projection.
"""

import dataclasses
import math

import keras
from keras import ops

from electra_tf import config as config_lib
from electra_tf.models.encoder import Encoder, model_inputs
from electra_tf.models.heads import DiscriminatorHead, MaskedLMHead


def all_positions(input_ids):
    """[batch, seq] int32 holding 0..seq-1 in every row."""
    return ops.cumsum(ops.ones_like(input_ids), axis=1) - 1


def masked_lm_head(encoder, name):
    """The tied MLM head on `encoder`'s word-embedding table."""
    return MaskedLMHead(encoder.embeddings.word_embeddings,
                        initializer_range=encoder.initializer_range, name=name)


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
        head = DiscriminatorHead(encoder.hidden_size, encoder.hidden_act,
                                 encoder.initializer_range, dtype=encoder.dtype_policy,
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
        logits = head(outputs["sequence_output"], all_positions(inputs["input_ids"]))
        kwargs.setdefault("name", "generator")
        super().__init__(inputs=inputs,
                         outputs={"sequence_output": outputs["sequence_output"],
                                  "logits": logits}, **kwargs)
        self.encoder = encoder
        self.head = head


@keras.saving.register_keras_serializable(package="electra_tf")
class TwoTowerGenerator(keras.Model):
    """Electric's cloze generator: a left-to-right and a right-to-left tower.

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
        logits = head(sequence_output, all_positions(inputs["input_ids"]))
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
    """Builds the networks exactly as the original `PretrainingModel`.

    Args:
        config: a `PretrainingConfig`.
        generator: build the generator (False for a discriminator-only checkpoint).
        discriminator_head: build `discriminator_predictions` (False: encoder only).
    Returns:
        `ElectraModels`. Variants: the default tied-embedding generator; untied generator
        embeddings; `untied_generator=False` (the generator is the discriminator's encoder);
        the BERT objective (no discriminator); the uniform generator (no generator);
        Electric's two-tower generator.

    Example:
    ```python
    models = build_models(PretrainingConfig("demo", "/tmp", debug=True))
    assert models.generator.encoder.embeddings is models.discriminator.encoder.embeddings
    ```
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


def encoders(models):
    """The distinct `Encoder`s of `models` (the discriminator's first)."""
    found = {id(models.encoder): models.encoder}
    gen = models.generator
    for encoder in ((gen.ltr_encoder, gen.rtl_encoder) if isinstance(gen, TwoTowerGenerator)
                    else (gen.encoder,) if gen is not None else ()):
        found.setdefault(id(encoder), encoder)
    return list(found.values())


def count_params(models):
    """Trainable parameters over all networks, counting shared variables once.

    Returns:
        (number of parameters, number of variables).
    """
    seen = {}
    for model in (models.generator, models.discriminator, models.encoder):
        if model is not None:
            for v in model.trainable_weights:
                seen[id(v)] = math.prod(v.shape)
    return sum(seen.values()), len(seen)
