"""Shared test setup: quiet TensorFlow, float32 without TF32, fixture paths."""

import json
import os
import pathlib
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# The fixtures were recorded in float32 without TF32, and their tolerances assume it.
tf.config.experimental.enable_tensor_float_32_execution(False)

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
REPO = pathlib.Path(__file__).parent.parent
# The files that take minutes, longest first. They are collected first, so that with the
# README's `-n 2` (whole files per worker, in collection order: pyproject's addopts) both
# cores start on them and the short files fill in around them, instead of one core
# running the last long file alone.
LONGEST_FIRST = ("test_docs.py", "test_faults.py", "test_multi_worker_faults.py",
                 "test_pipeline.py")


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file is kept


@pytest.fixture(scope="session", autouse=True)
def _library_temporary_files_under_basetemp(tmp_path_factory):
    """Temporary files that libraries make, in this process and in the processes tests
    start, go under pytest's basetemp (which pytest prunes) instead of /tmp:
    tensorflow-datasets makes a directory per dataset builder
    (`DatasetInfo.initialize_from_bucket`) and never removes it."""
    directory = str(tmp_path_factory.mktemp("tempfile"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", directory)
        patch.setenv("TMPDIR", directory)
        yield


@pytest.fixture(scope="session")
def tiny_hparams():
    """The hyperparameters the `original-tiny` fixture was made with."""
    config = json.loads((FIXTURES / "original-tiny" / "config.json").read_text())
    return config["pretraining_config_kwargs"]


@pytest.fixture(scope="session")
def tiny_config(tiny_hparams):
    from electra_tf.config import PretrainingConfig
    return PretrainingConfig("tiny", "/nonexistent-data-dir", **tiny_hparams)


@pytest.fixture(scope="session")
def tiny_prefix():
    return str(FIXTURES / "original-tiny" / "ckpt" / "model.ckpt")


@pytest.fixture(scope="session")
def tiny_loaded(tiny_config, tiny_prefix):
    from electra_tf import checkpoints
    return checkpoints.load_original(tiny_prefix, tiny_config)
