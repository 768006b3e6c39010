"""The `electra/embeddings` block: word + position + token type, LayerNorm, dropout."""

import keras
import keras_hub

from electra_tf.models.fused import Dropout
from electra_tf.models.numerics import layer_norm, truncated_normal


@keras.saving.register_keras_serializable(package="electra_tf")
class Embeddings(keras.layers.Layer):
    """The embedding block of the original `BertModel` (scope `electra/embeddings`).

    One instance is shared by the generator and the discriminator when the generator's
    embeddings are tied, so every table and the LayerNorm exist once. The word table is
    keras-hub's `ReversibleEmbedding` (one matrix for the input lookup and the tied MLM
    output, the latter in float32), the position table keras-hub's `PositionEmbedding`.

    Args:
        vocab_size: V.
        embedding_size: E, the width of every table.
        max_position_embeddings: rows of the position table (512).
        type_vocab_size: rows of the token-type table (2).
        hidden_dropout_prob: dropout applied after the LayerNorm.
        initializer_range: stddev of the truncated-normal initialiser.
    Call args:
        input_ids, segment_ids: int [batch, seq].
    Returns:
        [batch, seq, E], the LayerNorm output after dropout (before any projection).

    Example:
    ```python
    embeddings = Embeddings(vocab_size=100, embedding_size=16)
    ids = np.array([[1, 2, 3]], "int32")
    embeddings(ids, 0 * ids).shape  # (1, 3, 16)
    ```
    """

    def __init__(self, vocab_size, embedding_size, max_position_embeddings=512,
                 type_vocab_size=2, hidden_dropout_prob=0.1, initializer_range=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.initializer_range = initializer_range
        policy = self.dtype_policy
        self.word_embeddings = keras_hub.layers.ReversibleEmbedding(
            vocab_size, embedding_size, embeddings_initializer=truncated_normal(
                initializer_range), reverse_dtype="float32", name="word_embeddings",
            dtype=policy)
        self.position_embeddings = keras_hub.layers.PositionEmbedding(
            max_position_embeddings, initializer=truncated_normal(initializer_range),
            name="position_embeddings", dtype=policy)
        self.token_type_embeddings = keras.layers.Embedding(
            type_vocab_size, embedding_size, embeddings_initializer=truncated_normal(
                initializer_range), name="token_type_embeddings", dtype=policy)
        self.layer_norm = layer_norm("layer_norm", policy)
        self.dropout = Dropout(hidden_dropout_prob, dtype=policy)

    def build(self, input_ids_shape, segment_ids_shape=None):
        self.word_embeddings.build(input_ids_shape)
        self.token_type_embeddings.build(input_ids_shape)
        table_shape = tuple(input_ids_shape) + (self.embedding_size,)
        self.position_embeddings.build(table_shape)
        self.layer_norm.build(table_shape)

    def call(self, input_ids, segment_ids, training=None):
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(segment_ids)
        x = x + self.position_embeddings(x)
        return self.dropout(self.layer_norm(x), training=training)

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None):
        return tuple(input_ids_shape) + (self.embedding_size,)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_size": self.embedding_size,
                "max_position_embeddings": self.max_position_embeddings,
                "type_vocab_size": self.type_vocab_size,
                "hidden_dropout_prob": self.hidden_dropout_prob,
                "initializer_range": self.initializer_range}
