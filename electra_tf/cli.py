"""What every command line shares: quiet TensorFlow logs and clean error messages."""

import sys

from absl import app, logging

# Errors that mean bad input or a refused action: printed as one line, exit status 1.
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, FloatingPointError)


def run(main):
    """`absl.app.run(main)`, with TF's INFO chatter off and user errors as `error: ...`."""
    def wrapped(argv):
        logging.set_verbosity(logging.WARNING)
        import tensorflow as tf  # noqa: PLC0415 (after absl has parsed the flags)
        tf.get_logger().setLevel("ERROR")
        try:
            return main(argv)
        except USER_ERRORS as e:
            sys.exit(f"error: {e}")

    app.run(wrapped)
