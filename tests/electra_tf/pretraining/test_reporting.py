"""A pretraining run that reports itself: eval during training (TensorBoard, unchanged
training), the end-of-run summary, a finished run re-run, the learning-curve PNG."""

import os
import re

import matplotlib.image
import numpy as np
import pytest

from electra_tf.config import PretrainingConfig
from electra_tf.pretraining import trainer as training
from electra_tf.training import curves
from tests.electra_tf.pretraining.test_trainer import _final_weights, data_dir, tiny_hparams

__all__ = ["data_dir"]  # the fixture

SHORT = dict(num_train_steps=6, iterations_per_loop=2, save_checkpoints_steps=4,
             num_eval_steps=2)
EVAL_TAGS = {"disc_accuracy", "disc_auc", "disc_loss", "disc_precision", "disc_recall", "loss",
             "masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy"}


def _train(data_dir, name, lines, **hparams):
    config = PretrainingConfig(name, str(data_dir), **tiny_hparams(**dict(SHORT, **hparams)))
    trainer = training.Pretrainer(config, log=lines.append)
    trainer.train()
    return trainer


def _listed_paths(lines):
    """{what: path} of the summary's `  what: path` lines."""
    start = next(i for i, line in enumerate(lines) if line.startswith("Finished: step "))
    return {what: path.strip() for what, path in (
        line.strip().split(":", 1) for line in lines[start + 1:]
        if line.startswith("  ") and not line.startswith("  final "))}


def _check_png(path, panels_2x2):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert height > 200 and (width < 1.5 * height if panels_2x2 else width > 2 * height)


def test_eval_during_training_leaves_training_unchanged_and_goes_to_tensorboard(data_dir):
    plain = _train(data_dir, "no-eval", [])
    lines = []
    evaluated = _train(data_dir, "eval-every-2", lines, eval_every_steps=2)
    # The same weights and Adam slots, bit for bit, and the same training scalars.
    _, a = _final_weights(plain.config.model_dir)
    _, b = _final_weights(evaluated.config.model_dir)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert curves.read_scalars(plain.train_dir) == curves.read_scalars(evaluated.train_dir)
    # The original eval metrics, at every eval step, beside the training scalars.
    assert not os.path.exists(os.path.join(plain.config.model_dir, "eval"))
    scalars = curves.read_scalars(os.path.join(evaluated.config.model_dir, "eval"))
    assert set(scalars) == EVAL_TAGS
    assert all(steps == [2, 4, 6] for steps, _ in scalars.values())
    assert set(curves.read_scalars(evaluated.train_dir)) & set(scalars) == {"loss", "disc_loss"}
    at_6 = [line for line in lines if line.startswith("eval at step 6: ")]
    assert len(at_6) == 1 and f"disc_auc {scalars['disc_auc'][1][-1]:.4g}" in at_6[0]
    # The same metrics as evaluate() on the final weights; evaluate() writes them too.
    final = evaluated.evaluate()
    assert final["disc_auc"] == pytest.approx(scalars["disc_auc"][1][-1], abs=1e-6)
    again = curves.read_scalars(evaluated.eval_dir)
    assert again["loss"][0] == [2, 4, 6] and again["loss"][1][-1] == pytest.approx(final["loss"])


def test_summary_lists_existing_paths_and_a_finished_rerun_says_so(data_dir):
    lines = []
    trainer = _train(data_dir, "summary", lines, eval_every_steps=3)
    model_dir = trainer.config.model_dir
    steps = [line.split(" |")[0] for line in lines if line.startswith("step ")]
    assert steps == ["step 2/6 (33.3%)", "step 3/6 (50.0%)", "step 4/6 (66.7%)",
                     "step 6/6 (100.0%)"]  # chunks end at eval and checkpoint steps
    first = next(line for line in lines if line.startswith("step 2/6"))
    assert first.endswith("(tracing) | seq/s from the next report")
    assert any(line.startswith("step 6/6") and " seq/s | elapsed " in line for line in lines)
    summary = lines[next(i for i, line in enumerate(lines) if line.startswith("Finished"))]
    assert summary.startswith("Finished: step 6 of num_train_steps 6 | wall time ")
    assert "seq/s (steady state)" in summary
    assert any(line.startswith("  final train losses (step 6): disc_loss ") for line in lines)
    assert any(line.startswith("  final eval (step 6): disc_accuracy ") for line in lines)
    assert lines[-1] == f"  TensorBoard: tensorboard --logdir {model_dir}"
    paths = _listed_paths(lines)
    assert list(paths) == ["checkpoint", "original checkpoint", "config", "TensorBoard logs",
                           "learning curves", "TensorBoard"]
    assert paths["checkpoint"] == os.path.join(model_dir, "ckpt-6")
    for what, path in paths.items():
        if what != "TensorBoard":
            assert os.path.exists(path) or os.path.exists(path + ".index"), (what, path)
    _check_png(paths["learning curves"], panels_2x2=True)

    # Re-run: nothing to train; what is missing is written again.
    os.remove(paths["learning curves"])
    lines = []
    rerun = _train(data_dir, "summary", lines, eval_every_steps=3)
    assert rerun.step == 6
    assert "already finished at step 6 of num_train_steps 6: nothing to train" in lines
    assert not any(line.startswith(("Resuming from", "step ", "eval at")) for line in lines)
    assert _listed_paths(lines) == paths
    _check_png(paths["learning curves"], panels_2x2=True)


def test_mlm_only_curves_have_no_discriminator_panel(data_dir):
    config = PretrainingConfig("mlm-curves", str(data_dir), electra_objective=False,
                               **tiny_hparams(**SHORT))
    trainer = training.Pretrainer(config, log=lambda line: None)
    _check_png(trainer.write_learning_curves(), panels_2x2=False)  # 3 panels in a row


def test_eval_hparams_are_checked(data_dir):
    with pytest.raises(ValueError, match="eval_every_steps must be a non-negative integer"):
        PretrainingConfig("m", str(data_dir), eval_every_steps=-1)
    with pytest.raises(ValueError, match="eval_every_steps must be a non-negative integer"):
        PretrainingConfig("m", str(data_dir), eval_every_steps=2.5)
    with pytest.raises(ValueError, match="eval_tfrecords must be a glob pattern"):
        PretrainingConfig("m", str(data_dir), eval_tfrecords=["a"])
    missing = str(data_dir / "held_out/*.tfrecord")
    config = PretrainingConfig("m", str(data_dir), **tiny_hparams(eval_every_steps=2,
                                                                 eval_tfrecords=missing))
    with pytest.raises(FileNotFoundError, match="eval_tfrecords: .*" + re.escape(missing)):
        training.Pretrainer(config, log=lambda line: None)


def test_eval_reads_held_out_records(data_dir):
    shards = sorted(map(str, (data_dir / "pretrain_tfrecords").iterdir()))
    config = PretrainingConfig("held-out", str(data_dir), **tiny_hparams(
        eval_tfrecords=shards[0], pretrain_tfrecords=",".join(shards[1:])))
    trainer = training.Pretrainer(config, log=lambda line: None)
    assert trainer.eval_records == shards[0]
    held_out = trainer.evaluate(num_steps=1, write=False)
    trainer.eval_records = config.pretrain_tfrecords  # what eval_tfrecords=None reads
    assert trainer.evaluate(num_steps=1, write=False)["loss"] != held_out["loss"]
