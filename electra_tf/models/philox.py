"""Philox-4x32-10's raw 32-bit draws, bit for bit TensorFlow's, in one XLA pass on CPU.

Written here because neither TensorFlow nor XLA draws them fast on CPU: XLA's own Philox
(what `tf.random.stateless_uniform` compiles to) computes each of the four 32-bit words of
a 128-bit block by computing the whole block again, and TensorFlow's kernel is slower
still. Training's dropout masks draw about 16M of them per ELECTRA-Small step
(docs/benchmarks.md). Here the counter, the ten rounds and the key schedule are
TensorFlow integer ops, and the four words leave XLA as the four outputs of one variadic
reduction, which XLA emits as one loop that computes each block once.

With a GPU or TPU, `random_bits` is `tf.random.stateless_uniform` itself: the same bits
(tests/electra_tf/models/test_philox.py), from the platform's own kernel.
"""

import functools

import tensorflow as tf
from tensorflow.compiler.tf2xla.python import xla as tf2xla

# The counter-based algorithm of every draw of the project. TF's default, "auto_select",
# lets each device and XLA pick its own, so the same seed draws other numbers under
# `jit_compile` or on TPU.
RNG_ALG = "philox"
# Philox-4x32's multipliers and key increments (Salmon et al., "Parallel random numbers:
# as easy as 1, 2, 3", 2011), as TensorFlow's `random::PhiloxRandom` uses them.
_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
_KEY_INCREMENTS = (0x9E3779B9, 0xBB67AE85)
_ROUNDS = 10
# The key that turns a seed into TensorFlow's key and counter (`random::GenerateKey`).
_SEED_KEY = (0x3EC8F720, 0x02461E29)


def random_bits(size, seed):
    """`tf.random.stateless_uniform([size], seed, minval=None, maxval=None, dtype=tf.uint32,
    alg="philox")`, bit for bit, eagerly, in graphs and under XLA.

    Args:
        size: the number of draws, a Python int or an int32 scalar (static under XLA).
        seed: int32 or int64 [2].
    Returns:
        uint32 [size].
    """
    if _has_accelerator():
        return tf.random.stateless_uniform([size], seed, minval=None, maxval=None,
                                           dtype=tf.uint32, alg=RNG_ALG)
    return _random_bits(tf.convert_to_tensor(size, tf.int32), seed)


@functools.cache
def _has_accelerator():
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


@tf.function(jit_compile=True)
def _random_bits(size, seed):
    key, counter = _key_and_counter(seed)
    blocks = (size + 3) // 4
    words = _add_to_counter(counter, tf.bitcast(tf.range(blocks), tf.uint32))
    words = _one_loop(_philox_rounds(words, *key))
    return tf.reshape(tf.stack(words, axis=1), [-1])[:size]


def _key_and_counter(seed):
    """TensorFlow's key (k0, k1) and starting counter (c0..c3) for a seed: Philox of the
    seed's two int64s under a fixed key. Not `tf.raw_ops.StatelessRandomGetKeyCounter`,
    whose XLA kernel gives other values for negative seeds than its CPU kernel."""
    seed = tf.bitcast(tf.cast(seed, tf.int64), tf.uint32)  # [2, 2], low word first
    key = [tf.constant(k, tf.uint32) for k in _SEED_KEY]
    mixed = _philox_rounds(tf.unstack(tf.reshape(seed, [4])), *key)
    return mixed[:2], [tf.constant(0, tf.uint32)] * 2 + list(mixed[2:])


def _add_to_counter(counter, index):
    """The four words of the 128-bit `counter` + `index` (one per block), carries included."""
    words, carry = [], index
    for word in tf.unstack(counter):
        total = word + carry
        words.append(total)
        carry = tf.cast(total < carry, tf.uint32)
    return words


def _philox_rounds(words, k0, k1):
    """Philox-4x32-10 of the blocks `words` (c0..c3) under the key (k0, k1)."""
    c0, c1, c2, c3 = words
    for round_ in range(_ROUNDS):
        if round_:
            k0 += _KEY_INCREMENTS[0]
            k1 += _KEY_INCREMENTS[1]
        hi0, lo0 = _multiply(c0, _MULTIPLIERS[0])
        hi1, lo1 = _multiply(c2, _MULTIPLIERS[1])
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _multiply(word, multiplier):
    """(high, low) 32-bit halves of the 64-bit product."""
    product = tf.cast(word, tf.uint64) * tf.constant(multiplier, tf.uint64)
    return (tf.cast(tf.bitwise.right_shift(product, tf.constant(32, tf.uint64)), tf.uint32),
            tf.cast(product, tf.uint32))


@tf.function(input_signature=[tf.TensorSpec([], tf.uint32)] * 8)
def _bitwise_or(a0, a1, a2, a3, b0, b1, b2, b3):
    return a0 | b0, a1 | b1, a2 | b2, a3 | b3


def _one_loop(words):
    """The same four words, computed by one XLA loop.

    Four separate outputs would be four loops, each recomputing all ten rounds (XLA's CPU
    compiler does not fuse sibling outputs), and a stacked [blocks, 4] output one loop that
    computes a block per element. A variadic reduction's outputs come from one loop: each
    word is paired with a zero and the pair reduced by bitwise or (over a dimension of one,
    XLA would drop the reduction, and the four loops would return).
    """
    first = tf.equal(tf.range(2), 0)[None, :]
    pairs = [tf.where(first, word[:, None], tf.zeros_like(word)[:, None]) for word in words]
    zero = tf.constant(0, tf.uint32)
    return tf2xla.variadic_reduce(pairs, [zero] * 4, [1], _bitwise_or.get_concrete_function())
