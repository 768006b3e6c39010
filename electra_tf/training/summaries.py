"""TensorBoard scalars without a dependency on the tensorboard package."""

import tensorflow as tf


def write_scalar(tag, value):
    """Writes a scalar to the default summary writer.

    `tf.summary.scalar` needs tensorboard installed; the scalar plugin only needs this
    metadata, which TensorFlow's own protos can write.
    """
    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    tf.summary.write(tag, tf.constant(value, tf.float32),
                     metadata=metadata.SerializeToString())
