"""Every transformer layer's output and attention probabilities, for parity tests."""

import keras


def encoder_internals(encoder):
    """A model exposing the internals of an `Encoder` (the original's
    `get_all_encoder_layers()` and `attn_maps`).

    Returns:
        A Keras model with the encoder's inputs and outputs `embedding_output`,
        `all_layer_outputs` (list of [batch, seq, H]) and `attention_probs` (list of float32
        [batch, heads, seq, seq]).
    """
    nodes = [layer.output for layer in encoder.transformer_layers]
    return keras.Model(encoder.input, {
        "embedding_output": encoder.output["embedding_output"],
        "all_layer_outputs": [out for out, _ in nodes],
        "attention_probs": [probs for _, probs in nodes]})
