"""The pretraining heads: the generator's tied masked-LM head and the discriminator's."""

import keras
from keras import ops

from electra_tf.models.dense import Dense
from electra_tf.models.numerics import activation, layer_norm, truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class MaskedLMHead(keras.layers.Layer):
    """`generator_predictions` / `cloze_predictions`: the original's `get_token_logits`.

    At the chosen positions: dense → E (GELU), LayerNorm, then logits = x · Wᵀ + output_bias
    with W the (tied) word-embedding table, all in float32. Ours rather than keras-hub's
    `MaskedLMHead` (the same computation) so that the checkpoint table can name the
    sublayers through public attributes: `dense`, `layer_norm`, `output_bias`.

    Args:
        word_embeddings: the `ReversibleEmbedding` whose table gives the output logits.
        hidden_act: activation of `dense`.
        initializer_range: stddev of `dense`'s truncated-normal initialiser.
    Call args:
        sequence_output: [batch, seq, hidden].
        mask_positions: int [batch, N], the positions to predict.
    Returns:
        float32 logits [batch, N, V].
    """

    def __init__(self, word_embeddings, hidden_act="gelu", initializer_range=0.02, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.word_embeddings = word_embeddings
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.dense = Dense(
            word_embeddings.output_dim, activation=activation(hidden_act),
            kernel_initializer=truncated_normal(initializer_range), name="dense",
            dtype=self.dtype_policy)
        self.layer_norm = layer_norm("layer_norm", self.dtype_policy)

    def build(self, sequence_output_shape, mask_positions_shape=None):
        self.dense.build(sequence_output_shape)
        self.layer_norm.build(tuple(sequence_output_shape[:-1])
                              + (self.word_embeddings.output_dim,))
        self.output_bias = self.add_weight(shape=(self.word_embeddings.input_dim,),
                                           initializer="zeros", name="output_bias")

    def call(self, sequence_output, mask_positions):
        x = ops.take_along_axis(sequence_output, ops.expand_dims(mask_positions, -1), axis=1)
        x = self.layer_norm(self.dense(x))
        logits = self.word_embeddings(x, reverse=True)
        return ops.cast(logits, "float32") + self.output_bias

    def compute_output_shape(self, sequence_output_shape, mask_positions_shape):
        return tuple(mask_positions_shape) + (self.word_embeddings.input_dim,)


@keras.saving.register_keras_serializable(package="electra_tf")
class DiscriminatorHead(keras.layers.Layer):
    """`discriminator_predictions`: dense H→H with GELU, then dense H→1.

    Args:
        hidden_size: H.
        hidden_act: activation of `dense`.
        initializer_range: stddev of `dense`'s truncated-normal initialiser (`dense_1` is
            Glorot-uniform: the original passes no initializer there, so TF1's default).
    Returns:
        float32 logits [batch, seq]: positive means "replaced".
    """

    def __init__(self, hidden_size, hidden_act="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.dense = Dense(
            hidden_size, activation=activation(hidden_act),
            kernel_initializer=truncated_normal(initializer_range), dtype=self.dtype_policy,
            name="dense")
        self.dense_1 = Dense(1, dtype="float32", name="dense_1")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.dense_1.build(tuple(input_shape[:-1]) + (self.hidden_size,))

    def call(self, sequence_output):
        return ops.squeeze(self.dense_1(self.dense(sequence_output)), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "hidden_act": self.hidden_act, "initializer_range": self.initializer_range}
