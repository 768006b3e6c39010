"""ELECTRA in Keras 3 / TensorFlow 2, numerically identical to the original release."""

import os

# Keras 3 picks its backend at import time; this package is TensorFlow-only.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
