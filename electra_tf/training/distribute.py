"""`tf.distribute` plumbing: the strategy a config names, worker roles, global sums."""

import contextlib
import os

import keras
import tensorflow as tf


def get_strategy(config):
    """The `tf.distribute` strategy named by `config.strategy` (`use_tpu` means "tpu").

    Args:
        config: any config with `strategy`, `use_tpu`, `tpu_name`, `tpu_zone`,
            `gcp_project` (`PretrainingConfig`, `FinetuningConfig`).
    Returns:
        The default strategy, `MirroredStrategy`, `MultiWorkerMirroredStrategy` (the
        cluster read from `TF_CONFIG`) or `TPUStrategy`.
    Raises:
        ValueError: an unknown strategy, "multi_worker" without `TF_CONFIG`, or a TPU that
            cannot be located.
        ConnectionError: the TPU was located but cannot be reached or initialised.
    """
    kind = "tpu" if config.use_tpu else config.strategy
    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "strategy 'multi_worker' reads the cluster from the TF_CONFIG environment "
                "variable, which is not set: set it on every worker, e.g. TF_CONFIG="
                '\'{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                '"task": {"type": "worker", "index": 0}}\'')
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "tpu":
        return _tpu_strategy(config)
    raise ValueError(f"unknown strategy {kind!r}: use 'default', 'mirrored', 'multi_worker' "
                     "or 'tpu'")


def _tpu_strategy(config):
    """`TPUStrategy` on the TPU that `tpu_name`, `tpu_zone` and `gcp_project` locate."""
    where = (f"tpu_name={config.tpu_name!r}, tpu_zone={config.tpu_zone!r}, "
             f"gcp_project={config.gcp_project!r}")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=config.tpu_name, zone=config.tpu_zone, project=config.gcp_project)
    except (ValueError, RuntimeError) as e:  # no name outside Cloud; no cloud-tpu-client
        raise ValueError(f"strategy 'tpu' cannot locate the TPU ({where}): {e} tpu_name is "
                         "a Cloud TPU name, a grpc:// address, or 'local' on a TPU VM") from e
    try:
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (tf.errors.OpError, ValueError, RuntimeError) as e:
        message = e.message if isinstance(e, tf.errors.OpError) else str(e)
        raise ConnectionError(f"strategy 'tpu' cannot reach the TPU at "
                              f"{resolver.master() or '?'} ({where}): {message}") from e
    return tf.distribute.TPUStrategy(resolver)


@contextlib.contextmanager
def precision(name):
    """Keras' global dtype policy ("float32", "mixed_bfloat16", "mixed_float16") inside the
    block, the previous one after it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def check_batch_sizes(strategy, **batch_sizes):
    """Every batch size must split evenly over the replicas; the error names the field."""
    replicas = strategy.num_replicas_in_sync
    for name, size in batch_sizes.items():
        if size % replicas:
            raise ValueError(f"{name} {size} is not a multiple of the {replicas} replicas")


def local_concat(strategy, value):
    """This worker's replicas' parts of a per-replica batch output, concatenated."""
    return tf.concat(strategy.experimental_local_results(value), 0)


def worker_info(strategy):
    """(number of workers, this worker's index); the chief, if any, is worker 0."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return 1, 0
    cluster = resolver.cluster_spec().as_dict()
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if resolver.task_type == "chief":
        return chiefs + workers, 0
    return chiefs + workers, chiefs + resolver.task_id


def global_sum(value):
    """Sums a scalar over the replicas of the current step (identity outside a strategy)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce("sum", value)


def gather_lists(strategy, values, size=64):
    """Every replica's list of (at most `size`) non-negative ints, through one all-gather.

    Args:
        strategy: the run's strategy; outside multi-worker runs the lists are this process'.
        values: this worker's ints (the last `size` are kept).
    Returns:
        A list of lists, one per replica (a worker's replicas give the same list).
    """
    values = [int(v) for v in values][-size:]
    row = tf.constant(values + [-1] * (size - len(values)), tf.int64)
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: row)
    rows = strategy.gather(per_replica, axis=0).numpy().reshape(-1, size)
    return [[int(v) for v in r if v >= 0] for r in rows]
