"""The global norm of looked-up tables: per lookup (the original off TPU) or dense (on TPU).

Hand computations in NumPy: a table looked up by `tf.gather` has an `IndexedSlices` gradient
with one row per lookup; the original's `tf.clip_by_global_norm` squares those rows one by
one ("per_lookup"), while a one-hot lookup's gradient has the rows of one id summed ("dense").
The update applies the summed gradient either way.
"""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import optimization
from electra_tf.config import PretrainingConfig
from tests.conftest import REPO

WORDS = "electra/embeddings/word_embeddings"
TOKEN_TYPES = "electra/embeddings/token_type_embeddings"  # one-hot in the original
KERNEL = "electra/encoder/layer_0/output/dense/kernel"


def segment_sum(ids, rows, n):
    """The dense gradient of lookups `ids` with gradient rows `rows`: rows of one id summed."""
    dense = np.zeros((n, rows.shape[1]))
    np.add.at(dense, ids, rows)
    return dense


def squares(x):
    return float(np.sum(np.square(np.asarray(x, np.float64))))


@pytest.fixture(scope="module")
def batch():
    """Gradients of a batch with repeated token ids (id 1 three times, 3 twice)."""
    rng = np.random.RandomState(3)
    word_ids, type_ids = np.array([1, 3, 1, 1, 4, 3]), np.array([0, 1, 1, 0, 0, 1])
    # Rows of one id point the same way, on average: their sum is longer than the rows.
    return {"word_ids": word_ids, "word_rows": rng.normal(1, 1, (6, 4)).astype(np.float32),
            "type_ids": type_ids, "type_rows": rng.normal(0, 2, (6, 4)).astype(np.float32),
            "kernel": rng.normal(0, 1, (4, 3)).astype(np.float32)}


def original_global_norms(named_grads):
    """(per-lookup, dense) global norms of [(original name, gradient)] as the original
    computes them off TPU (a `word_embeddings` table looked up by gather: its rows one by
    one) and on TPU (one-hot lookups: every table's rows of one id summed). Its token types
    are one-hot lookups on every platform."""
    per_lookup = dense = 0.0
    for name, grad in named_grads:
        if isinstance(grad, tf.IndexedSlices):
            rows = grad.values.numpy()
            summed = squares(segment_sum(grad.indices.numpy(), rows, int(grad.dense_shape[0])))
            per_lookup += squares(rows) if name.endswith("/word_embeddings") else summed
            dense += summed
        else:
            per_lookup += squares(grad)
            dense += squares(grad)
    return np.sqrt(per_lookup), np.sqrt(dense)


def hand_norms(b):
    """(per-lookup norm, dense norm) of `batch`, as the original computes each."""
    words = segment_sum(b["word_ids"], b["word_rows"], 6)
    others = squares(segment_sum(b["type_ids"], b["type_rows"], 2)) + squares(b["kernel"])
    return np.sqrt(squares(b["word_rows"]) + others), np.sqrt(squares(words) + others)


def apply_once(optimizer_of_names, b):
    """One update from zero slots; returns (global norm seen, clip factor applied to the word
    table's summed gradient)."""
    variables = {WORDS: keras.Variable(np.ones((6, 4), np.float32)),
                 TOKEN_TYPES: keras.Variable(np.ones((2, 4), np.float32)),
                 KERNEL: keras.Variable(np.ones((4, 3), np.float32))}
    optimizer = optimizer_of_names(variables)
    grads = [tf.IndexedSlices(tf.constant(b["word_rows"]), tf.constant(b["word_ids"]),
                              tf.constant([6, 4])),
             tf.IndexedSlices(tf.constant(b["type_rows"]), tf.constant(b["type_ids"]),
                              tf.constant([2, 4])),
             tf.constant(b["kernel"])]
    optimizer.apply(grads, list(variables.values()))
    m = optimizer.original_state()[1][WORDS]["adam_m"]  # (1 − β1) · factor · summed gradient
    summed = segment_sum(b["word_ids"], b["word_rows"], 6)
    factor = float(np.sum(m * summed) / (0.1 * squares(summed)))
    np.testing.assert_allclose(m, 0.1 * factor * summed, rtol=1e-5, atol=1e-7)
    return float(optimizer.global_norm.numpy()), factor


def test_the_clip_factor_is_the_per_lookup_one_off_tpu_and_the_dense_one_on_tpu(batch):
    per_lookup, dense = hand_norms(batch)
    assert per_lookup > 1 and dense > 1 and abs(per_lookup / dense - 1) > 0.01
    for use_tpu, expected in ((False, per_lookup), (True, dense)):
        config = PretrainingConfig("t", "/d", use_tpu=use_tpu)
        norm, factor = apply_once(
            lambda names: optimization.pretraining_optimizer(config, names), batch)
        assert norm == pytest.approx(expected, rel=1e-6), use_tpu
        assert factor == pytest.approx(1.0 / expected, rel=1e-5), use_tpu


def test_the_explicit_setting_wins_and_a_bad_value_is_refused(batch):
    per_lookup, dense = hand_norms(batch)
    for setting, expected in (("per_lookup", per_lookup), ("dense", dense)):
        norm, _ = apply_once(lambda names: optimization.create_optimizer(
            1e-3, 10, variables=names, clip_norm_of_sparse_gradients=setting), batch)
        assert norm == pytest.approx(expected, rel=1e-6), setting
    with pytest.raises(ValueError, match="clip_norm_of_sparse_gradients must be one of "
                                         "per_lookup, dense, got 'sparse'"):
        optimization.AdamWeightDecay(clip_norm_of_sparse_gradients="sparse")


def test_accumulation_clips_as_the_original_on_the_whole_batch(batch):
    """k micro-batches: the original's batch holds all their lookups, each row of the mean
    gradient divided by k; its other gradients are the mean ones."""
    halves = [{k: v[:3] if k.startswith("word") else v for k, v in batch.items()},
              {k: v[3:] if k.startswith("word") else v for k, v in batch.items()}]
    variables = {WORDS: keras.Variable(np.ones((6, 4), np.float32)),
                 KERNEL: keras.Variable(np.ones((4, 3), np.float32))}
    optimizer = optimization.create_optimizer(1e-3, 10, variables=variables,
                                              gradient_accumulation_steps=2)
    for half in halves:
        optimizer.apply([tf.IndexedSlices(tf.constant(half["word_rows"]),
                                          tf.constant(half["word_ids"]), tf.constant([6, 4])),
                         tf.constant(half["kernel"])], list(variables.values()))
    # The whole batch's mean gradient: all six lookups' rows / 2; the kernel's mean.
    expected = np.sqrt(squares(batch["word_rows"] / 2) + squares(batch["kernel"]))
    assert float(optimizer.global_norm.numpy()) == pytest.approx(expected, rel=1e-6)
    assert int(optimizer.iterations.numpy()) == 1
    sums = optimizer.slot_variables()[f"{WORDS}/lookup_square_sums"]
    assert float(sums.numpy()) == 0.0  # emptied by the update, like the accumulators


MIRRORED = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import keras, numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from electra_tf import optimization

    rng = np.random.RandomState(0)
    ids = rng.randint(0, 6, (16, 3))           # 48 lookups of 6 ids: many repeats
    y = rng.randn(16, 1).astype("float32")
    NAMES = ("electra/embeddings/word_embeddings", "task_specific/x/dense/kernel",
             "task_specific/x/dense/bias")

    def run(strategy, batch, accumulate, setting="per_lookup"):
        init = np.random.RandomState(1)  # the same weights in every run
        with strategy.scope():
            embedding = keras.layers.Embedding(6, 4)
            dense = keras.layers.Dense(1)
            dense(tf.reduce_mean(embedding(ids[:1]), 1))
            variables = [embedding.embeddings, dense.kernel, dense.bias]
            for v, value in zip(variables, (0.3, 0.2, 0.1)):
                v.assign(np.full(v.shape, value, "float32") + init.normal(0, 0.1, v.shape))
            optimizer = optimization.create_optimizer(
                1e-2, 10, warmup_steps=2, gradient_accumulation_steps=accumulate,
                variables=dict(zip(NAMES, variables)), clip_norm_of_sparse_gradients=setting)
            optimizer.build(variables)

        def loss_of(ib, yb):  # this replica's share of its micro-batch's mean loss, ×100
            out = dense(tf.reduce_mean(embedding(ib), 1))
            return tf.reduce_sum((out - yb) ** 2) * 100 / batch

        @tf.function
        def step(ib, yb):
            def replica_step(ib, yb):
                with tf.GradientTape() as tape:
                    loss = loss_of(ib, yb)
                optimizer.apply(tape.gradient(loss, variables), variables)
            strategy.run(replica_step, args=(ib, yb))

        hand = None
        if batch == 16:  # the original's norms, by hand from the gradients of the 16
            with tf.GradientTape() as tape:
                loss = loss_of(ids, y)
            sparse, *others = tape.gradient(loss, variables)
            assert isinstance(sparse, tf.IndexedSlices)
            rest = sum(float(np.sum(np.square(g.numpy().astype("float64")))) for g in others)
            rows = float(np.sum(np.square(sparse.values.numpy().astype("float64"))))
            summed = np.zeros((6, 4))
            np.add.at(summed, sparse.indices.numpy(), sparse.values.numpy())
            hand = [np.sqrt(rows + rest), np.sqrt(float(np.sum(summed ** 2)) + rest)]
        batches = strategy.experimental_distribute_dataset(
            tf.data.Dataset.from_tensor_slices((ids, y)).batch(batch))
        for ib, yb in batches:
            step(ib, yb)
        return float(optimizer.global_norm.numpy()), int(optimizer.iterations.numpy()), hand

    one = tf.distribute.get_strategy()
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print(json.dumps({
        "one": run(one, 16, 1), "mirrored": run(mirrored, 16, 1),
        "one_accumulating": run(one, 8, 2), "mirrored_accumulating": run(mirrored, 8, 2),
        "one_dense": run(one, 16, 1, "dense"), "mirrored_dense": run(mirrored, 16, 1, "dense")}))
""")


def test_mirrored_replicas_clip_as_one_device_on_the_same_global_batch():
    """Two replicas' IndexedSlices, summed across replicas, give the global batch's per-lookup
    norm (the sum of each replica's squared rows), accumulating or not."""
    result = subprocess.run([sys.executable, "-c", MIRRORED], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    per_lookup, dense = runs["one"][2]
    assert abs(per_lookup / dense - 1) > 0.005 and per_lookup > 1
    for name in ("one", "mirrored", "one_accumulating", "mirrored_accumulating"):
        norm, updates, _ = runs[name]
        assert updates == 1 and norm == pytest.approx(per_lookup, rel=1e-6), (name, runs)
    for name in ("one_dense", "mirrored_dense"):
        assert runs[name][0] == pytest.approx(dense, rel=1e-6), (name, runs)
