"""The main job end to end at tiny sizes: every stage's outputs exist, both SavedModels load
and answer raw text, the two before/after tables are printed; and its command line."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from electra_quickstart import pipeline
from finetune import synthetic as finetuning_data
from pretrain_data import synthetic as grammar
from tests.conftest import REPO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run (40 pretraining steps on 200 documents), in `run-2` beside an earlier
    `run-1` it must leave alone."""
    output_dir = tmp_path_factory.mktemp("quickstart")
    earlier = output_dir / "run-1"
    earlier.mkdir()
    (earlier / "keep.txt").write_text("earlier run")
    lines = []
    result = pipeline.run_quickstart(str(output_dir), num_train_steps=40, num_documents=200,
                                     log=lines.append)
    return output_dir, result, "\n".join(lines)


def test_a_new_run_directory_and_earlier_runs_untouched(run):
    output_dir, result, _ = run
    assert result.run_dir == str(output_dir / "run-2")
    assert sorted(os.listdir(output_dir / "run-1")) == ["keep.txt"]


def test_every_stage_writes_its_outputs(run):
    _, result, _ = run
    data = result.run_dir
    model_dir = os.path.join(data, "models", pipeline.MODEL_NAME)
    finetuned = os.path.join(model_dir, "finetuning_models", "sst_model_1")
    assert len(os.listdir(os.path.join(data, "corpus"))) == 4
    assert os.path.exists(os.path.join(data, "vocab.txt"))
    assert len(os.listdir(os.path.join(data, "pretrain_tfrecords"))) == 8
    assert os.path.exists(os.path.join(model_dir, "ckpt-40.index"))
    assert os.path.exists(os.path.join(model_dir, "original", "model.ckpt-40.index"))
    assert os.path.exists(os.path.join(data, "finetuning_data", "sst", "train.tsv"))
    for name in ("serving.json", "model.weights.h5"):
        assert os.path.exists(os.path.join(finetuned, name)), name
    assert result.exports == {
        "discriminator": os.path.join(data, "export", "discriminator", "1"),
        "classifier": os.path.join(data, "export", "classifier", "1")}
    for export in result.exports.values():
        assert os.path.exists(os.path.join(export, "saved_model.pb"))
    assert result.curves, "no learning curves written"
    for png in result.curves:
        with open(png, "rb") as f:
            assert f.read(8) == PNG_SIGNATURE, png
    assert set(result.seconds) == {"data", "pretraining", "fine-tuning", "export", "answers",
                                   "total"}


def test_both_models_learned_and_the_tables_are_printed(run):
    _, result, printed = run
    (before, after), (ft_before, ft_after) = result.pretraining, result.finetuning
    assert after["disc_auc"] > before["disc_auc"]
    assert ft_after["accuracy"] > ft_before["accuracy"]
    assert f"disc_auc{before['disc_auc']:>30.4f}{after['disc_auc']:>10.4f}" in printed
    assert f"accuracy{ft_before['accuracy']:>30.2f}{ft_after['accuracy']:>10.2f}" in printed
    for header in ("pretraining (eval)", "fine-tuning (sst, dev)", "learning curves: ",
                   "total time "):
        assert header in printed, header


def test_both_exports_load_and_answer_raw_text(run):
    _, result, printed = run
    lines = []
    pipeline.query_discriminator(result.exports["discriminator"], pipeline.QUERIES, lines.append)
    assert [line.split()[::2] for line in lines] == [
        ["[CLS]", *sentence.split(), "[SEP]"] for sentence in pipeline.QUERIES]
    labels = pipeline.query_classifier(result.exports["classifier"],
                                       pipeline.CLASSIFIER_QUERIES, lines.append)
    assert len(labels) == len(pipeline.CLASSIFIER_QUERIES) and set(labels) <= {"0", "1"}
    assert lines[-1] in printed  # the run printed the same answers


def test_the_generated_task_replaces_one_word_of_a_grammar_sentence():
    """Label 1: a sentence of the pretraining grammar; label 0: the same with its adjective,
    noun or verb replaced by another word of the corpus that the grammar never puts there."""
    nouns = grammar.NOUNS
    for sentence, label in finetuning_data.coherence_rows(200, np.random.RandomState(0)):
        the, adjective, noun, verb, *rest = sentence.split()
        assert the == "the" and " ".join(rest[:-1]) in grammar.OBJECTS and rest[-1] == "."
        follows = noun in nouns and adjective in nouns[noun][1] and verb in nouns[noun][0]
        assert follows == bool(label), (sentence, label)


def test_no_improvement_is_an_error():
    pretraining = ({"disc_auc": 0.7}, {"disc_auc": 0.9})
    pipeline.check_improved(pretraining, ({"accuracy": 50.0}, {"accuracy": 90.0}))
    with pytest.raises(pipeline.DidNotLearn, match="fine-tuning did not improve"):
        pipeline.check_improved(pretraining, ({"accuracy": 50.0}, {"accuracy": 50.0}))
    with pytest.raises(FloatingPointError, match="pretraining did not improve disc_auc"):
        pipeline.check_improved(pretraining[::-1], ({"accuracy": 50.0}, {"accuracy": 90.0}))


def test_help_lists_the_flags_at_once():
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "electra_quickstart", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for flag in ("--output-dir", "--num-train-steps", "--num-documents",
                 "--finetuning-epochs"):
        assert flag in result.stdout, flag
    assert "fine-tuned" in result.stdout
    assert time.monotonic() - start < 10
