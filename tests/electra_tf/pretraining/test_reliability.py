"""What a pretraining run does when things go wrong: changed hparams on resume, divergence,
a damaged checkpoint, a second run on the same directory, a half-written TF1 copy."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_common import lock
from electra_tf.config import PretrainingConfig
from electra_tf.pretraining import trainer as training
from tests.electra_tf.pretraining.test_trainer import _final_weights, data_dir, tiny_hparams

__all__ = ["data_dir"]  # the fixture


def _train(data_dir, name, lines=None, allow_changes=(), **hparams):
    config = PretrainingConfig(name, str(data_dir), **tiny_hparams(**hparams))
    log = (lambda line: None) if lines is None else lines.append
    trainer = training.Pretrainer(config, log=log, allow_changes=allow_changes)
    trainer.train()
    return trainer


SHORT = dict(num_train_steps=4, iterations_per_loop=2, save_checkpoints_steps=2)


def test_changed_architecture_on_resume_is_refused_before_anything_is_written(data_dir):
    _train(data_dir, "resume-config", **SHORT)
    config_file = data_dir / "models/resume-config/config.json"
    before = config_file.read_bytes()
    with pytest.raises(ValueError) as error:
        _train(data_dir, "resume-config", **dict(SHORT, embedding_size=16, learning_rate=0.1))
    message = str(error.value)
    assert "embedding_size was 32, now 16" in message
    assert "learning_rate was 0.001, now 0.1" in message
    assert "--allow-changed-hparams embedding_size,learning_rate" in message
    assert config_file.read_bytes() == before
    # More steps and another cadence are fine, and said.
    lines = []
    trainer = _train(data_dir, "resume-config", lines, **dict(SHORT, num_train_steps=6,
                                                              save_checkpoints_steps=3))
    assert trainer.step == 6
    assert "Changed since the last run: num_train_steps = 6 (was 4)" in lines
    assert json.loads(config_file.read_text())["resolved"]["num_train_steps"] == 6
    # A deliberate optimizer change, allowed by name.
    lines = []
    trainer = _train(data_dir, "resume-config", lines, allow_changes=["learning_rate"],
                     **dict(SHORT, num_train_steps=8, save_checkpoints_steps=3,
                            learning_rate=5e-4))
    assert trainer.step == 8
    assert "Changed since the last run: learning_rate = 0.0005 (was 0.001)" in lines


def test_divergence_is_reported_and_never_saved(data_dir):
    # lr 30 overflowed within 40 steps on some machines and not on others (AMX): 3000 warns
    # for a few steps, then overflows, on both.
    diverging = dict(learning_rate=3000.0, num_warmup_steps=0, iterations_per_loop=1,
                     save_checkpoints_steps=1, num_train_steps=40, keep_checkpoint_max=1)
    lines = []
    with pytest.raises(FloatingPointError) as error:
        _train(data_dir, "diverge", lines, **diverging)
    message = str(error.value)
    warnings = [line for line in lines if "the run is diverging" in line]
    assert warnings, lines
    latest, values = _final_weights(str(data_dir / "models/diverge"))
    assert f"the last checkpoint, all finite, is {latest}" in message
    assert all(np.all(np.isfinite(v)) for v in values.values())
    # Resuming reads that checkpoint; a state past saving (here any further step overflows)
    # stops again without rotating it out, although only one checkpoint is kept.
    lines = []
    with pytest.raises(FloatingPointError, match=f"all finite, is {latest}"):
        _train(data_dir, "diverge", lines, allow_changes=["learning_rate"],
               **dict(diverging, learning_rate=1e-9))
    assert f"Resuming from {latest} at step {latest.rsplit('-', 1)[1]}" in lines
    assert _final_weights(str(data_dir / "models/diverge"))[0] == latest


def test_damaged_latest_checkpoint_falls_back_to_the_one_before(data_dir):
    trainer = _train(data_dir, "damaged", **SHORT)
    reference = {n: v.numpy() for n, v in trainer.state_variables().items()}
    data = data_dir / "models/damaged/ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    lines = []
    trainer = _train(data_dir, "damaged", lines, **SHORT)
    assert any(line.startswith("Warning: checkpoint ") and "ckpt-4 cannot be read" in line
               for line in lines), lines
    assert any(line.endswith("ckpt-2 at step 2") for line in lines)
    assert trainer.step == 4
    # Re-trained from ckpt-2, the run ends exactly where the undamaged one did (the CPU
    # run is deterministic): every weight and optimizer slot.
    for name, value in trainer.state_variables().items():
        np.testing.assert_array_equal(value.numpy(), reference[name], err_msg=name)
    assert training.checkpoints.unreadable(str(data_dir / "models/damaged/ckpt-4")) is None


def test_resume_through_a_relative_data_dir(data_dir, monkeypatch):
    """The state file's checkpoint names are relative; they are joined to the directory
    once (a relative --data-dir once made `models/m/models/m/ckpt-2`)."""
    monkeypatch.chdir(data_dir)
    _train(".", "relative", **dict(SHORT, num_train_steps=2))
    lines = []
    trainer = _train(".", "relative", lines, **SHORT)
    assert not any("cannot be read" in line for line in lines), lines
    assert any(line.endswith("ckpt-2 at step 2") for line in lines), lines
    assert trainer.step == 4
    # From another working directory the data iterator's file names do not resolve: a
    # finished run needs no data; one with steps to go says what to do.
    monkeypatch.chdir(data_dir / "models")
    lines = []
    _train("..", "relative", lines, **SHORT)
    assert any(line.startswith("already finished at step 4") for line in lines), lines
    with pytest.raises(ValueError, match="data position cannot be restored: .*pretrain_data"
                                         ".* is missing.*same working directory"):
        _train("..", "relative", **dict(SHORT, num_train_steps=6))


def test_every_checkpoint_damaged_is_one_error(data_dir):
    _train(data_dir, "all-damaged", **dict(SHORT, keep_checkpoint_max=1))
    data = data_dir / "models/all-damaged/ckpt-4.data-00000-of-00001"
    data.write_bytes(b"\0" * data.stat().st_size)
    with pytest.raises(ValueError, match="no checkpoint can be read .*ckpt-4 are damaged"):
        _train(data_dir, "all-damaged", **SHORT)


def test_a_second_run_on_the_directory_is_refused(data_dir):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        directory = data_dir / "models/locked"
        directory.mkdir(parents=True)
        holder = json.loads(json.dumps(lock._holder()))  # noqa: SLF001 (a test of the format)
        holder.update(pid=other.pid, start=lock._start_time(other.pid))  # noqa: SLF001
        (directory / lock.LOCK_FILE).write_text(json.dumps(holder))
        with pytest.raises(lock.DirectoryLocked, match=f"another run writes here: pid {other.pid}"):
            _train(data_dir, "locked", **SHORT)
        assert not (directory / "config.json").exists()
    finally:
        other.kill()
        other.wait()
    lines = []
    _train(data_dir, "locked", lines, **SHORT)  # the holder is gone: taken over
    assert any(line.startswith("Taking over the lock") for line in lines)
    assert not (directory / lock.LOCK_FILE).exists()


def test_half_written_original_checkpoint_is_written_again(data_dir):
    trainer = _train(data_dir, "original-half", **SHORT)
    prefix = data_dir / "models/original-half/original/model.ckpt-4"
    os.remove(f"{prefix}.data-00000-of-00001")
    lines = []
    _train(data_dir, "original-half", lines, **SHORT)
    assert any(line.startswith(f"Writing {prefix} again") for line in lines)
    value = tf.train.load_variable(str(prefix), "electra/embeddings/word_embeddings")
    np.testing.assert_array_equal(
        value, trainer.names["electra/embeddings/word_embeddings"].variable.numpy())
