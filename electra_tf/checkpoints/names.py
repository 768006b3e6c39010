"""The one table of names: every variable of the original graph and where it lives on ours.

For each part of the original graph (a variable scope), the original variable names
relative to that scope and the attribute path of the variable on our layer. Our layers
keep the original's shapes ([H, H] attention kernels included), so conversion is a copy.
"""

import dataclasses
import functools

from electra_tf.models import ElectraModels, TwoTowerGenerator

# Original name (relative to its scope) -> attribute path on our layer.
_EMBEDDINGS = (
    ("word_embeddings", "word_embeddings.embeddings"),
    ("token_type_embeddings", "token_type_embeddings.embeddings"),
    ("position_embeddings", "position_embeddings.position_embeddings"),
    ("LayerNorm/beta", "layer_norm.beta"),
    ("LayerNorm/gamma", "layer_norm.gamma"),
)
_PROJECTION = (
    ("embeddings_project/kernel", "embeddings_project.kernel"),
    ("embeddings_project/bias", "embeddings_project.bias"),
)
_LAYER = (
    ("attention/self/query/kernel", "attention.query.kernel"),
    ("attention/self/query/bias", "attention.query.bias"),
    ("attention/self/key/kernel", "attention.key.kernel"),
    ("attention/self/key/bias", "attention.key.bias"),
    ("attention/self/value/kernel", "attention.value.kernel"),
    ("attention/self/value/bias", "attention.value.bias"),
    ("attention/output/dense/kernel", "attention.output_dense.kernel"),
    ("attention/output/dense/bias", "attention.output_dense.bias"),
    ("attention/output/LayerNorm/beta", "attention_layer_norm.beta"),
    ("attention/output/LayerNorm/gamma", "attention_layer_norm.gamma"),
    ("intermediate/dense/kernel", "intermediate_dense.kernel"),
    ("intermediate/dense/bias", "intermediate_dense.bias"),
    ("output/dense/kernel", "output_dense.kernel"),
    ("output/dense/bias", "output_dense.bias"),
    ("output/LayerNorm/beta", "output_layer_norm.beta"),
    ("output/LayerNorm/gamma", "output_layer_norm.gamma"),
)
_MLM_HEAD = (
    ("dense/kernel", "dense.kernel"),
    ("dense/bias", "dense.bias"),
    ("LayerNorm/beta", "layer_norm.beta"),
    ("LayerNorm/gamma", "layer_norm.gamma"),
    ("output_bias", "output_bias"),
)
_DISC_HEAD = (
    ("dense/kernel", "dense.kernel"),
    ("dense/bias", "dense.bias"),
    ("dense_1/kernel", "dense_1.kernel"),
    ("dense_1/bias", "dense_1.bias"),
)
_TABLE = {"embeddings": _EMBEDDINGS, "projection": _PROJECTION, "layer": _LAYER,
          "mlm_head": _MLM_HEAD, "disc_head": _DISC_HEAD}


@dataclasses.dataclass(frozen=True)
class Mapped:
    """One of our variables and the shape it has in the original."""

    variable: object
    original_shape: tuple


def variable_map(models):
    """Every model variable under its original name.

    Args:
        models: `models.ElectraModels` (a missing network is skipped).
    Returns:
        dict: original name -> `Mapped(variable, original_shape)`.
    """
    mapping = {}

    def add(scope, table, obj):
        for name, path in _TABLE[table]:
            variable = functools.reduce(getattr, path.split("."), obj)
            mapping[f"{scope}/{name}"] = Mapped(variable, tuple(variable.shape))

    def add_encoder(scope, encoder):
        own = encoder.embeddings is not models.encoder.embeddings or scope == "electra"
        if own:  # tied generators use `electra/embeddings/*`, as the original
            add(f"{scope}/embeddings", "embeddings", encoder.embeddings)
        if encoder.embeddings_project is not None:
            add(scope, "projection", encoder)
        for i, layer in enumerate(encoder.transformer_layers):
            add(f"{scope}/encoder/layer_{i}", "layer", layer)

    add_encoder("electra", models.encoder)
    gen = models.generator
    if isinstance(gen, TwoTowerGenerator):
        add_encoder("generator_ltr", gen.ltr_encoder)
        add_encoder("generator_rtl", gen.rtl_encoder)
        add("cloze_predictions", "mlm_head", gen.head)
    elif gen is not None:
        if gen.encoder is not models.encoder:
            add_encoder("generator", gen.encoder)
        add("generator_predictions", "mlm_head", gen.head)
    if models.discriminator is not None:
        add("discriminator_predictions", "disc_head", models.discriminator.head)
    return mapping


def encoder_variable_map(encoder):
    """`variable_map` of an encoder alone: the `electra/*` variables fine-tuning uses."""
    return variable_map(ElectraModels(None, None, None, encoder))
