import numpy as np
import pytest
import tensorflow as tf

from electra_tf.models import philox

SEEDS = [(3, 5), (0, 0), (-7, 2**31 - 1), (-2**31, -1), (123456789, -987654321)]


def stateless_bits(size, seed):
    return tf.random.stateless_uniform([size], seed, minval=None, maxval=None,
                                       dtype=tf.uint32, alg="philox").numpy()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 1001, 65536])
def test_random_bits_are_tensorflows_philox_bits(size, seed):
    expected = stateless_bits(size, seed)
    for dtype in (tf.int32, tf.int64):
        np.testing.assert_array_equal(philox.random_bits(size, tf.constant(seed, dtype)),
                                      expected)


def test_random_bits_are_the_same_in_graphs_and_under_xla():
    seed = tf.constant([11, -12], tf.int64)
    expected = stateless_bits(3 * 2**18 + 3, seed)

    def draw(seed):
        return philox.random_bits(3 * 2**18 + 3, seed)

    np.testing.assert_array_equal(tf.function(draw)(seed), expected)
    np.testing.assert_array_equal(tf.function(draw, jit_compile=True)(seed), expected)
    # A size known only from a tensor's shape, inside XLA.
    sized = tf.function(lambda x, s: philox.random_bits(tf.size(x), s), jit_compile=True)
    np.testing.assert_array_equal(sized(tf.zeros([3, 77]), seed), stateless_bits(231, seed))


def test_a_counter_word_overflow_carries_into_the_next():
    """Block i draws from counter + i as one 128-bit number: a carry out of the low word
    (which TensorFlow's seeds never need, their counters start at zero) reaches the next."""
    counter = tf.constant([0xFFFFFFFF, 0xFFFFFFFF, 7, 0], tf.uint32)
    words = philox._add_to_counter(counter, tf.constant([0, 1, 2], tf.uint32))
    np.testing.assert_array_equal(np.stack(words, 1), [[0xFFFFFFFF, 0xFFFFFFFF, 7, 0],
                                                       [0, 0, 8, 0], [1, 0, 8, 0]])
