"""The `score` signature of an Electric model's export: equal to the Python scorer."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers the tokenizer ops before loading)

from electra_tf import checkpoints
from electra_tf.config import PretrainingConfig
from electra_tf.models import build_models
from electra_tf.scoring.scorer import Scorer
from electra_tf.serving import export as export_lib
from electra_tf.serving.examples import text_example
from tests.conftest import FIXTURES
from tests.electra_tf.serving import export_check

TEXTS = ["the cat sat on the mat .", "Hello, World!", "Café naïve ÅNGSTRÖM 東京 ß",
         " ".join(["encyclopedia"] * 20)]  # the last is truncated at max_seq_length


@pytest.fixture(scope="module")
def electric_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("electric")
    shutil.copy(FIXTURES / "vocab_tiny.txt", root / "vocab.txt")
    config = PretrainingConfig(
        "electric", str(root), electric_objective=True, vocab_size=1024, embedding_size=16,
        max_seq_length=24, seed=5,
        model_hparam_overrides={"hidden_size": 32, "num_hidden_layers": 2,
                                "num_attention_heads": 2, "intermediate_size": 64})
    checkpoints.save_model_dir(build_models(config), config.model_dir)
    return config.model_dir


@pytest.fixture(scope="module")
def exported(electric_dir, tmp_path_factory):
    return export_lib.export_saved_model(electric_dir, str(tmp_path_factory.mktemp("export")))


def test_score_signature_equals_the_python_scorer(electric_dir, exported):
    model = tf.saved_model.load(exported)
    assert {"score", "score_ids", "score_examples"} <= set(model.signatures)
    with pytest.warns(UserWarning, match="only their first 22 are scored"):
        expected = Scorer(electric_dir).score(TEXTS)
    served = model.signatures["score"](text=tf.constant(TEXTS))
    np.testing.assert_allclose(served["score"].numpy(), [t.score for t in expected], atol=1e-5)
    for row, text in enumerate(expected):
        scored = served["scored"].numpy()[row]
        assert [t.decode() for t in served["tokens"].numpy()[row][scored]] == text.tokens
        np.testing.assert_allclose(served["token_scores"].numpy()[row][scored],
                                   text.token_scores, atol=1e-5)
        assert np.all(served["token_scores"].numpy()[row][~scored] == 0)
    examples = model.signatures["score_examples"](inputs=tf.constant(
        [text_example(text=t).SerializeToString() for t in TEXTS]))
    np.testing.assert_array_equal(examples["score"].numpy(), served["score"].numpy())


def test_score_op_types_are_served_by_the_model_server(exported):
    # Electric's two-tower generator adds Roll; the score adds LogicalAnd, LogicalNot: all
    # TF core ops.
    recorded = json.loads((FIXTURES / "serving_ops.json").read_text())["electric"]
    assert export_check.op_types(exported) == recorded


def test_only_electric_models_export_a_score(tmp_path, tiny_config, tiny_prefix):
    directory = str(tmp_path / "models" / "tiny")
    checkpoints.convert_from_original(tiny_prefix, directory, tiny_config)
    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    module = export_lib.load_module(directory)
    assert not {"score", "score_ids", "score_examples"} & set(module.signatures)
