"""The original's numerical choices, shared by every layer (LayerNorm ε, GELU, initialiser)."""

import keras

LAYER_NORM_EPSILON = 1e-12
# The original adds -10000 to the attention logits of padded keys, not -inf.
ATTENTION_MASK_ADDER = -10000.0


def exact_gelu(x):
    """The original's GELU: x·Φ(x) with the exact erf, not the tanh approximation."""
    return keras.activations.gelu(x, approximate=False)


def activation(name):
    """The original's `get_activation`: "gelu" is the exact erf form, not the tanh one."""
    if name in (None, "", "linear"):
        return None
    if name == "gelu":
        return exact_gelu
    if name in ("relu", "tanh"):
        return name
    raise ValueError(f"Unsupported hidden_act {name!r}: expected gelu, relu, tanh or linear")


def truncated_normal(initializer_range):
    """TF1's `truncated_normal_initializer`: resampled beyond 2 stddev, as Keras does."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


def layer_norm(name, dtype=None):
    """A LayerNorm with the original's ε."""
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name, dtype=dtype)
