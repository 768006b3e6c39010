"""TensorBoard scalars, written with TensorFlow's own summary ops.

A run's scalars go to `<model_dir>/train` and its eval metrics to `<model_dir>/eval` under
the same tags where they coincide (`loss`), so TensorBoard overlays them;
`curves.read_scalars` reads them back.
"""

import tensorflow as tf


def write_scalar(tag, value):
    """Writes a scalar to the default summary writer at its default step.

    `tf.summary.scalar` would need the tensorboard package at training time; the scalars
    plugin only needs this metadata, which TensorFlow's own protos can write.

    Args:
        tag: the scalar's name in TensorBoard.
        value: a number.
    """
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    tf.summary.write(tag, tf.constant(value, tf.float32),
                     metadata=metadata.SerializeToString())


def write_scalars(writer, step, values):
    """Writes `values` as scalars at `step` and flushes them to disk.

    Args:
        writer: a `tf.summary.SummaryWriter` (kept open: a loop passes the same one each
            time), or a log directory (created if missing; a writer is opened for this call
            and closed, which adds one event file to the directory).
        step: the step (x axis) of every value.
        values: {tag: number}.

    Example:
    ```python
    from electra_tf.training import curves, summaries
    summaries.write_scalars("/tmp/electra_docs/tb/eval", 10, {"loss": 2.5, "disc_auc": 0.7})
    curves.read_scalars("/tmp/electra_docs/tb/eval")["loss"]  # ([10], [2.5])
    ```
    """
    own = isinstance(writer, str)
    if own:
        writer = tf.summary.create_file_writer(writer)
    try:
        with writer.as_default(step=int(step)):
            for tag, value in values.items():
                write_scalar(tag, float(value))
        writer.flush()
    finally:
        if own:
            writer.close()
