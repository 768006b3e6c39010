"""Training: learning on generated data, resume after SIGKILL, distribution, bad input."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.pretraining import trainer as training
from electra_tf.config import PretrainingConfig
from electra_tf.models import build_models
from pretrain_data import build, synthetic
from tests.conftest import FIXTURES, REPO

HERE = os.path.dirname(__file__)
TINY_MODEL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 128}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data dir as the original expects: vocab.txt and pretrain_tfrecords/ (S=32)."""
    root = tmp_path_factory.mktemp("data")
    synthetic.write_corpus(str(root / "corpus"), num_documents=400, seed=0)
    shutil.copy(FIXTURES / "vocab_tiny.txt", root / "vocab.txt")
    build.build_pretraining_dataset(
        str(root / "corpus"), str(root / "vocab.txt"), str(root / "pretrain_tfrecords"),
        max_seq_length=32, num_out_files=4, seed=1, progress=False)
    return root


def tiny_hparams(**overrides):
    hparams = dict(vocab_size=1024, max_seq_length=32, embedding_size=32, train_batch_size=16,
                   eval_batch_size=16, learning_rate=1e-3, num_warmup_steps=20,
                   num_train_steps=300, iterations_per_loop=50, save_checkpoints_steps=100,
                   num_eval_steps=10, generator_hidden_size=0.5, seed=3,
                   model_hparam_overrides=TINY_MODEL)
    hparams.update(overrides)
    return hparams


def test_tiny_model_learns(data_dir):
    lines = []
    config = PretrainingConfig("learns", str(data_dir), **tiny_hparams())
    trainer = training.Pretrainer(config, log=lines.append)
    before = trainer.evaluate(write=False)
    trainer.train()
    after = trainer.evaluate()
    assert after["global_step"] == 300
    assert after["loss"] < 0.8 * before["loss"]
    assert after["masked_lm_accuracy"] > before["masked_lm_accuracy"] + 0.1
    assert after["disc_auc"] > 0.6 > before["disc_auc"]
    assert any("step 300/300 (100.0%)" in line and "seq/s" in line and "ETA" in line
               for line in lines)
    results = json.loads((data_dir / "models/learns/results/unsup_results.json").read_text())
    assert results["disc_auc"] == pytest.approx(after["disc_auc"])
    assert (data_dir / "models/learns/results/unsup_results.txt").exists()
    assert tf.io.gfile.glob(str(data_dir / "models/learns/train/events.out.tfevents*"))
    # The model directory converts to an original checkpoint, Adam slots and step included.
    prefix = checkpoints.convert_to_original(str(data_dir / "models/learns"),
                                             str(data_dir / "learns_tf1/model.ckpt"))
    names = dict(tf.train.list_variables(prefix))
    assert names["global_step"] == [] and int(tf.train.load_variable(prefix, "global_step")) == 300
    assert "electra/encoder/layer_0/attention/self/query/kernel/adam_m" in names


def _run(data_dir, model, hparams, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "electra_tf.run_pretraining", "--data-dir", str(data_dir),
         "--model-name", model, "--hparams", json.dumps(hparams)],
        cwd=REPO, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, **kwargs)


def _final_weights(model_dir):
    """Every float tensor of the latest checkpoint: weights and Adam slots."""
    latest = tf.train.latest_checkpoint(model_dir)
    values = {n: tf.train.load_variable(latest, n) for n, _ in tf.train.list_variables(latest)
              if not n.startswith(("_CHECKPOINTABLE", "data/"))}
    return latest, {n: v for n, v in values.items()
                    if isinstance(v, np.ndarray) and v.dtype == np.float32}


def test_resume_after_sigkill_matches_uninterrupted_run(data_dir):
    hparams = tiny_hparams(num_train_steps=60, save_checkpoints_steps=20, iterations_per_loop=10)
    whole = _run(data_dir, "whole", hparams)
    killed = _run(data_dir, "killed", hparams)
    # ckpt-20 counts once the `checkpoint` state file names it: that is what a restart
    # reads (a kill between the files and the state file restarts from the previous one).
    state = data_dir / "models/killed/checkpoint"

    def committed():
        return state.exists() and '"ckpt-20"' in state.read_text()

    deadline = time.time() + 240
    while not committed() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.05)
    assert committed(), killed.communicate()[0]
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    assert not (data_dir / "models/killed/ckpt-60.index").exists()
    resumed = _run(data_dir, "killed", hparams)
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    assert "Resuming from" in out
    assert whole.wait(timeout=300) == 0, whole.communicate()[0]
    latest_a, a = _final_weights(str(data_dir / "models/whole"))
    latest_b, b = _final_weights(str(data_dir / "models/killed"))
    assert latest_a.endswith("ckpt-60") and latest_b.endswith("ckpt-60")
    assert a.keys() == b.keys() and len(a) == 3 * 80  # weights, adam_m, adam_v
    for name in a:  # the CPU run is deterministic: exactly equal
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    # (Re-running a finished run: the last case of test_faults.py.)


def test_mirrored_equals_one_device(data_dir, tmp_path):
    out = tmp_path / "mirrored.json"
    run = subprocess.run([sys.executable, os.path.join(HERE, "distributed_run.py"), "mirrored",
                          str(data_dir), str(out)], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    for key, value in result["one"].items():
        assert result["mirrored"][key] == pytest.approx(value, abs=1e-5, rel=1e-5), key
    assert result["max_weight_diff"] < 1e-5


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_bad_input(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="vocab.txt: vocabulary not found"):
        training.Pretrainer(PretrainingConfig("m", str(tmp_path), **tiny_hparams()))
    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    with pytest.raises(ValueError, match="has 1024 tokens but vocab_size is 30522"):
        training.Pretrainer(PretrainingConfig("m", str(tmp_path), **tiny_hparams(
            vocab_size=30522)))
    with pytest.raises(FileNotFoundError, match="pretrain_data.tfrecord"):
        training.Pretrainer(PretrainingConfig("m", str(tmp_path), **tiny_hparams())).train()
    wrong_length = PretrainingConfig("len", str(data_dir), **tiny_hparams(max_seq_length=64))
    with pytest.raises(ValueError, match="max_seq_length=64"):
        training.Pretrainer(wrong_length, log=lambda line: None).train()
    with pytest.raises(ValueError, match="Exactly one of do_train and do_eval"):
        training.train_or_eval(PretrainingConfig("m", str(data_dir), do_eval=True,
                                                 **tiny_hparams()))


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data_dir):
    config = PretrainingConfig("nan", str(data_dir), **tiny_hparams(
        learning_rate=1e35, num_warmup_steps=0, iterations_per_loop=1,
        save_checkpoints_steps=1, num_train_steps=50))
    with pytest.raises(FloatingPointError, match="stopping without saving") as error:
        training.Pretrainer(config, log=lambda line: None).train()
    latest, values = _final_weights(str(data_dir / "models/nan"))
    assert latest is not None and latest in str(error.value)
    assert len(values) == 3 * 80
    for name, value in values.items():
        assert np.all(np.isfinite(value)), name


def test_continue_pretraining_a_converted_original_checkpoint(data_dir, tiny_prefix):
    """The README recipe: convert into <data>/models/<name>, then run_pretraining resumes."""
    hparams = json.loads((REPO / "configs" / "original_tiny.json").read_text())
    hparams.update(num_train_steps=5, iterations_per_loop=1, save_checkpoints_steps=1)
    config = PretrainingConfig("continued", str(data_dir), **hparams)
    loaded = checkpoints.convert_from_original(tiny_prefix, config.model_dir, config)
    lines = []
    trainer = training.Pretrainer(config, log=lines.append)
    trainer.train()
    assert any("Resuming from" in line and "at step 3" in line for line in lines)
    assert trainer.step == 5
    assert [line.split()[1] for line in lines if line.startswith("step ")] == ["4/5", "5/5"]
    before = loaded.discriminator.head.dense.kernel.numpy()
    assert np.abs(trainer.models.discriminator.head.dense.kernel.numpy() - before).max() > 0
    assert tf.io.gfile.exists(os.path.join(config.model_dir, "original", "model.ckpt-5.index"))


@pytest.mark.parametrize("precision,jit_compile", [("mixed_bfloat16", False),
                                                   ("mixed_float16", False), ("float32", True)])
def test_precision_and_xla(data_dir, precision, jit_compile):
    config = PretrainingConfig(f"{precision}-{jit_compile}", str(data_dir), **tiny_hparams(
        precision=precision, jit_compile=jit_compile, num_train_steps=4, iterations_per_loop=2))
    trainer = training.Pretrainer(config, log=lambda line: None)
    losses = trainer.train()
    assert trainer.step == 4 and all(np.isfinite(v) for v in losses.values())
    assert all(m.variable.dtype == "float32" for m in trainer.names.values())
    assert trainer.optimizer.dynamic_loss_scale == (precision == "mixed_float16")


def _full_rows(root, num_records=64, seq_length=32):
    """A data dir whose every record fills all 32 positions: each example then has the same
    number of masked and of real tokens, so a micro-batch's loss (a mean over its tokens)
    averages to the loss of the whole batch."""
    shutil.copy(FIXTURES / "vocab_tiny.txt", root / "vocab.txt")
    (root / "pretrain_tfrecords").mkdir()
    rng = np.random.default_rng(0)

    def feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    for shard in range(2):
        path = str(root / "pretrain_tfrecords" / f"pretrain_data.tfrecord-{shard}-of-2")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(num_records // 2):
                ids = [101] + rng.integers(200, 1000, seq_length - 2).tolist() + [102]
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "input_ids": feature(ids), "input_mask": feature([1] * seq_length),
                    "segment_ids": feature([0] * seq_length)})).SerializeToString())
    return root


def test_gradient_accumulation_equals_the_accumulated_batch(tmp_path):
    """2 micro-batches of 8 per update end where batches of 16 do (dropout off: the dropout
    masks are drawn per call); one micro-batch of 8 per update does not."""
    data_dir = _full_rows(tmp_path)
    common = dict(num_train_steps=3, iterations_per_loop=3, save_checkpoints_steps=3,
                  num_warmup_steps=0, model_hparam_overrides=dict(
                      TINY_MODEL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0))

    def train(name, **hparams):
        config = PretrainingConfig(name, str(data_dir), **tiny_hparams(**common, **hparams))
        trainer = training.Pretrainer(config, log=lambda line: None)
        trainer.train()
        assert trainer.step == 3
        return {name: v.numpy() for name, v in trainer.state_variables().items()}

    a = train("accumulate", train_batch_size=8, gradient_accumulation_steps=2)
    b = train("whole", train_batch_size=16)
    c = train("micro", train_batch_size=8)
    assert len(b) == 3 * 80 and b.keys() < a.keys()  # weights, Adam slots (+ accumulators)
    # Float32 rounding only (the two half-batch gradients are summed, then halved): measured
    # 1.2e-7 at most, against 7e-3 between batch 8 and batch 16 without accumulation.
    differences = {n: np.abs(a[n] - b[n]).max() for n in b}
    assert max(differences.values()) < 1e-6, max(differences.items(), key=lambda kv: kv[1])
    assert max(np.abs(c[n] - b[n]).max() for n in b) > 1e-4  # the batch size matters
    assert int(tf.train.load_variable(str(data_dir / "models/accumulate/original/model.ckpt-3"),
                                      "global_step")) == 3
    lines = []
    results = training.train_or_eval(PretrainingConfig("accumulate", str(data_dir), **tiny_hparams(
        **common, gradient_accumulation_steps=2, train_batch_size=8, do_train=False,
        do_eval=True, num_eval_steps=1)), log=lines.append)
    assert results["global_step"] == 3  # the evaluated checkpoint's step, not 0
    assert any(line.startswith("Evaluating ") and line.endswith("ckpt-3 (step 3)")
               for line in lines)


def test_a_directory_of_an_older_format_is_refused_before_anything_is_written(data_dir):
    config = PretrainingConfig("old-format", str(data_dir), **tiny_hparams())
    checkpoints.save_model_dir(build_models(config), config.model_dir)
    components = os.path.join(config.model_dir, "components.json")
    values = json.loads(open(components).read())
    del values["checkpoint_format"]  # as written before format 2
    with open(components, "w") as f:
        json.dump(values, f)
    before = {name: open(os.path.join(config.model_dir, name), "rb").read()
              for name in ("config.json", "components.json")}
    with pytest.raises(ValueError, match="checkpoint format 1"):
        training.Pretrainer(config, log=lambda line: None)
    for name, content in before.items():
        assert open(os.path.join(config.model_dir, name), "rb").read() == content
