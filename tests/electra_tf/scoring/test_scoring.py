"""Text scores: Electric's −energy, the masked-LM pseudo-log-likelihood, `Scorer`, the CLI.

Tiny models with random weights, saved as model directories beside the tiny vocabulary;
where a score has a closed form, hand-set weights give it.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_common import cli
from electra_tf import checkpoints, score as score_cli
from electra_tf.config import PretrainingConfig
from electra_tf.models import build_models
from electra_tf.scoring import energy, pseudo_likelihood, scorer as scorer_lib
from electra_tf.serving.text_encoder import TextEncoder
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES, REPO

VOCAB = str(FIXTURES / "vocab_tiny.txt")
CLS, SEP, MASK = 101, 102, 103  # vocab_tiny's
MAX_SEQ_LENGTH = 12
TINY = {"vocab_size": 1024, "embedding_size": 16, "generator_hidden_size": 0.5,
        "max_seq_length": MAX_SEQ_LENGTH,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 64}}
ELECTRIC = {"electric_objective": True}
TEXTS = ["The city is new.", "the world", "a b c d e f g"]
BIAS = 0.75  # the discriminator head's bias when its kernel is zero: every energy is BIAS


def make_model_dir(data_dir, name, hparams, energy_bias=None):
    """<data_dir>/models/<name> with random weights (the energy fixed to `energy_bias`)."""
    config = PretrainingConfig(name, str(data_dir), **TINY, **hparams)
    models = build_models(config)
    if energy_bias is not None:
        head = models.discriminator.head.dense_1
        head.kernel.assign(tf.zeros_like(head.kernel))
        head.bias.assign([energy_bias])
    return checkpoints.save_model_dir(models, str(data_dir / "models" / name))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    shutil.copy(VOCAB, directory / "vocab.txt")
    return directory


@pytest.fixture(scope="module")
def electric_dir(data_dir):
    return make_model_dir(data_dir, "electric", ELECTRIC)


@pytest.fixture(scope="module")
def constant_dir(data_dir):
    return make_model_dir(data_dir, "constant", ELECTRIC, energy_bias=BIAS)


@pytest.fixture(scope="module")
def electra_dir(data_dir):
    return make_model_dir(data_dir, "electra", {})


@pytest.fixture(scope="module")
def constant_scorer(constant_dir):
    return scorer_lib.Scorer(constant_dir, batch_size=2)


def features_of(texts, text_b=None):
    encoder = TextEncoder(VOCAB, MAX_SEQ_LENGTH)
    return encoder.encode(tf.constant(texts), None if text_b is None else tf.constant(text_b))


# ------------------------------------------------------------------ the scores


def test_constant_energy_gives_minus_bias_per_real_non_special_token(constant_dir):
    loaded = checkpoints.load_model_dir(constant_dir)
    # Different lengths (padding), and a pair: its second [SEP] is not scored either.
    features = features_of(["the world", "the", "a b"], ["", "", "c d e"])
    out = energy.electric_scores(loaded.discriminator, features, CLS, SEP)
    ids = features["input_ids"].numpy()
    expected_scored = (ids != 0) & (ids != CLS) & (ids != SEP)
    assert expected_scored.sum(-1).tolist() == [2, 1, 5]  # sanity of the texts
    np.testing.assert_array_equal(out["scored"], expected_scored)
    np.testing.assert_allclose(out["token_scores"], np.where(expected_scored, -BIAS, 0.0),
                               atol=1e-6)
    np.testing.assert_allclose(out["score"], [-2 * BIAS, -BIAS, -5 * BIAS], atol=1e-5)
    assert out["token_scores"].dtype == tf.float32 and out["score"].dtype == tf.float32


def test_token_scores_are_minus_the_discriminator_logits(electric_dir):
    loaded = checkpoints.load_model_dir(electric_dir)
    features = features_of(TEXTS)
    out = energy.electric_scores(loaded.discriminator, features, CLS, SEP)
    logits = loaded.discriminator(features)["logits"].numpy()
    scored = out["scored"].numpy()
    np.testing.assert_allclose(out["token_scores"].numpy()[scored], -logits[scored], atol=1e-6)
    np.testing.assert_allclose(out["score"], out["token_scores"].numpy().sum(-1), atol=1e-5)


def naive_pll(generator, features, row):
    """Σ_t log p(x_t | x with t masked), one masked copy at a time."""
    total, ids = 0.0, features["input_ids"].numpy()[row]
    for t in np.flatnonzero((ids != 0) & (ids != CLS) & (ids != SEP)):
        copy = {k: v.numpy()[row:row + 1].copy() for k, v in features.items()}
        copy["input_ids"][0, t] = MASK
        logits = generator(copy)["logits"][0, t]
        total += float(tf.nn.log_softmax(logits)[ids[t]])
    return total


@pytest.mark.parametrize("hparams", [{}, ELECTRIC], ids=["mlm", "two_tower"])
def test_mlm_pll_equals_one_position_at_a_time(electra_dir, electric_dir, hparams):
    generator = checkpoints.load_model_dir(electric_dir if hparams else electra_dir).generator
    features = features_of(TEXTS)
    out = pseudo_likelihood.mlm_scores(generator, features, MASK, CLS, SEP, batch_size=3)
    np.testing.assert_allclose(out["score"], [naive_pll(generator, features, r)
                                              for r in range(len(TEXTS))], atol=1e-4)
    np.testing.assert_array_equal(out["scored"],
                                  energy.scored_positions(features, CLS, SEP))
    if hparams:  # the two towers never see the token they predict: one pass is enough
        cloze = pseudo_likelihood.cloze_scores(generator, features, CLS, SEP)
        np.testing.assert_allclose(cloze["token_scores"], out["token_scores"], atol=1e-5)


def test_cloze_scores_need_the_two_tower_generator(electra_dir):
    generator = checkpoints.load_model_dir(electra_dir).generator
    with pytest.raises(ValueError, match="two-tower"):
        pseudo_likelihood.cloze_scores(generator, features_of(TEXTS), CLS, SEP)


# ------------------------------------------------------------------ Scorer


def test_scorer_tokenises_as_training_and_scores_in_closed_form(constant_scorer):
    tokenizer = FullTokenizer(VOCAB)
    results = constant_scorer.score(TEXTS)  # batch_size 2: two batches
    assert [r.text for r in results] == TEXTS
    for result in results:
        assert result.tokens == tokenizer.tokenize(result.text)
        assert result.score == pytest.approx(-BIAS * len(result.tokens), abs=1e-5)
        np.testing.assert_allclose(result.token_scores, -BIAS, atol=1e-6)
        assert not result.truncated


def test_rerank_puts_the_highest_score_first(constant_scorer):
    # Every token scores −BIAS: fewer WordPieces rank higher; ties keep their order.
    groups = [["a b c", "a", "a b"], ["x y", "p q"], ["only"]]
    rankings = constant_scorer.rerank(groups)
    assert [r.order for r in rankings] == [[1, 2, 0], [0, 1], [0]]
    assert [r.best for r in rankings] == ["a", "x y", "only"]
    assert rankings[0].candidates == groups[0]
    np.testing.assert_allclose(rankings[0].scores, [-3 * BIAS, -BIAS, -2 * BIAS], atol=1e-5)


def test_too_long_texts_are_truncated_as_in_training_with_a_warning(constant_scorer):
    long_text = " ".join(["the"] * 20)
    with pytest.warns(UserWarning, match="1 of 2 texts are longer than 10 WordPieces"):
        long, short = constant_scorer.score([long_text, "the"])
    assert long.truncated and not short.truncated
    assert len(long.tokens) == MAX_SEQ_LENGTH - 2
    assert long.score == pytest.approx(-BIAS * (MAX_SEQ_LENGTH - 2), abs=1e-5)


@pytest.mark.parametrize("call,message", [
    (lambda s: s.score(["fine", "  "]), r"text 1 \('  '\) has no WordPiece"),
    (lambda s: s.score("one string"), "got one string; pass \\[text\\]"),
    (lambda s: s.score(["ok", 3]), r"texts\[1\] must be a str"),
    (lambda s: s.rerank([["a", "b"], ["c", ""]]), "group 1, candidate 1"),
    (lambda s: s.rerank([["a"], []]), "group 1 has no candidate"),
])
def test_bad_texts_are_named(constant_scorer, call, message):
    with pytest.raises(ValueError, match=message):
        call(constant_scorer)


@pytest.mark.parametrize("model,method,message", [
    ("electra", "electric", "trained with ELECTRA .*use method 'mlm'"),
    ("electra", "cloze", "needs Electric's two-tower generator; use method 'mlm'"),
    ("electric", "energy", "method must be one of electric, mlm, cloze"),
])
def test_a_method_the_model_cannot_do_says_what_to_use(electra_dir, electric_dir, model,
                                                       method, message):
    with pytest.raises(ValueError, match=message):
        scorer_lib.Scorer(electra_dir if model == "electra" else electric_dir, method)


@pytest.mark.parametrize("model,method", [("electric", "electric"), ("electric", "cloze"),
                                          ("electra", "mlm")])
def test_each_method_scores_with_its_function(electric_dir, electra_dir, model, method):
    model_dir = electric_dir if model == "electric" else electra_dir
    loaded = checkpoints.load_model_dir(model_dir)
    features = features_of(TEXTS)
    expected = {
        "electric": lambda: energy.electric_scores(loaded.discriminator, features, CLS, SEP),
        "cloze": lambda: pseudo_likelihood.cloze_scores(loaded.generator, features, CLS, SEP),
        "mlm": lambda: pseudo_likelihood.mlm_scores(loaded.generator, features, MASK, CLS,
                                                    SEP, batch_size=4)}[method]()
    results = scorer_lib.Scorer(model_dir, method, batch_size=2).score(TEXTS)
    np.testing.assert_allclose([r.score for r in results], expected["score"], atol=1e-5)


# ------------------------------------------------------------------ command line


def run_cli(*argv):
    cli.run(score_cli.main, score_cli.define_flags, argv=["score", *argv])


def test_cli_writes_scores_and_rankings(constant_dir, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("the city\nthe world .\n", encoding="utf-8")
    run_cli("--model-dir", constant_dir, "--input", str(texts))  # to stdout
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["line"], r["text"], r["tokens"]) for r in records] == [
        (1, "the city", ["the", "city"]), (2, "the world .", ["the", "world", "."])]
    assert records[1]["score"] == pytest.approx(-3 * BIAS, abs=1e-5)
    assert records[1]["truncated"] is False

    groups, output = tmp_path / "nbest.tsv", tmp_path / "out" / "ranked.jsonl"
    groups.write_text("a b\ta\nsingle\n", encoding="utf-8")
    run_cli("--model-dir", constant_dir, "--input", str(groups), "--output", str(output),
            "--batch-size", "1")
    captured = capsys.readouterr()
    assert "step 3/3" in captured.err  # more than one batch: progress
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [(r["candidates"], r["order"], r["best"]) for r in records] == [
        (["a b", "a"], [1, 0], "a"), (["single"], [0], "single")]


@pytest.mark.parametrize("content,message", [
    ("fine\n\nfine\n", "texts.txt:2: empty line"),
    ("a\tb\na\t\n", "texts.txt:2: empty candidate"),
    ("", "texts.txt: empty"),
])
def test_cli_names_the_bad_input_line(constant_dir, tmp_path, capsys, content, message):
    path = tmp_path / "texts.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit, match=message):
        run_cli("--model-dir", constant_dir, "--input", str(path))


def test_cli_process_refuses_electric_on_an_electra_directory(electra_dir, tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("the cat\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "electra_tf.score", "--model-dir",
                             electra_dir, "--input", str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {electra_dir} was trained with ELECTRA (electric_objective is false)")
