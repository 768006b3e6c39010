"""What the project relies on in its pinned libraries beyond their documented API.

Each test names the behaviour and where we rely on it, so the day a new keras, keras-hub or
TensorFlow changes it, this fails loudly instead of a checkpoint or a resume going wrong.
"""

import keras
import keras_hub
import numpy as np
import tensorflow as tf


def test_a_keras_variable_is_backed_by_one_tf_variable():
    """`keras.Variable.value` is the backing `tf.Variable`, the same object every time
    (the optimizer keys its slots by it and updates it with `StrategyExtended.update`; the
    serving module saves it)."""
    cpu = tf.config.list_logical_devices("CPU")[0].name
    for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy([cpu])):
        with strategy.scope():
            variable = keras.Variable(np.ones(2, "float32"))
        assert isinstance(variable.value, tf.Variable)
        assert variable.value is variable.value


def test_dropout_keeps_its_random_state_in_seed_generator_state():
    """The trainer checkpoints `Dropout.seed_generator.state` so that a resumed run draws
    the same dropout masks (Keras does not checkpoint it)."""
    dropout = keras.layers.Dropout(0.1)
    state = dropout.seed_generator.state
    before = np.array(state.numpy())
    dropout(np.ones((2, 3), "float32"), training=True)
    assert not np.array_equal(state.numpy(), before)


def test_keras_hub_layers_keep_their_tables_in_public_attributes():
    """The checkpoint name table reads `ReversibleEmbedding.embeddings` and
    `PositionEmbedding.position_embeddings`, and the masked-LM head calls the reversible
    embedding with `reverse=True`."""
    words = keras_hub.layers.ReversibleEmbedding(7, 4, reverse_dtype="float32")
    positions = keras_hub.layers.PositionEmbedding(5)
    ids = np.array([[1, 2]])
    x = words(ids)
    positions(x)
    assert tuple(words.embeddings.shape) == (7, 4)
    assert tuple(positions.position_embeddings.shape) == (5, 4)
    logits = words(x, reverse=True)
    np.testing.assert_allclose(logits, np.matmul(x, words.embeddings.numpy().T), atol=1e-6)
