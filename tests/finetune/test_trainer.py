"""The optimizer of fine-tuning (layer-wise LR, loss scaling), the training loop's
progress lines under mixed_bfloat16, and its per-example loss in progress and TensorBoard."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import optimization
from electra_tf.training import curves
from finetune import records, tasks as tasks_lib, trainer
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model
from finetune.trials import run_finetuning
from pretrain_data.tokenization import FullTokenizer
from tests.finetune.conftest import TINY, task


def test_layerwise_lr_multipliers():
    config = FinetuningConfig("m", "/d", task_names=["mnli"], model_size="base",
                              model_hparam_overrides={"hidden_size": 64, "intermediate_size": 64,
                                                      "num_attention_heads": 1})
    model = build_finetuning_model(config, [task(config, "mnli")])
    names = model.original_variables()
    m = optimization.layerwise_lr_multipliers(names, 0.8, 12)
    assert m["electra/embeddings/word_embeddings"] == pytest.approx(0.8 ** 14)
    assert m["electra/encoder/layer_0/output/dense/kernel"] == pytest.approx(0.8 ** 13)
    assert m["electra/encoder/layer_11/output/dense/kernel"] == pytest.approx(0.8 ** 2)
    assert m["task_specific/mnli/dense/kernel"] == 1.0
    optimizer = optimization.create_optimizer(1e-4, 10, layerwise_lr_decay_power=0.8,
                                              n_transformer_layers=12, variables=names)
    optimizer.build([m.variable for m in names.values()])
    assert optimizer.lr_multiplier(names["task_specific/mnli/dense/bias"].variable) == 1.0
    assert optimizer.lr_multiplier(names["electra/embeddings/word_embeddings"].variable) == (
        pytest.approx(0.8 ** 14))


def test_build_optimizer_scales_the_loss_only_for_mixed_float16():
    for precision, scale in (("float32", 1.0), ("mixed_float16", 2.0 ** 15)):
        config = FinetuningConfig("m", "/d", task_names=["sts"], precision=precision,
                                  **dict(TINY, init_checkpoint=None))
        model = build_finetuning_model(config, [task(config, "sts")])
        optimizer = trainer.build_optimizer(config, model, num_train_steps=10)
        assert float(optimizer.scale_loss(tf.constant(1.0))) == scale
        assert optimizer.lr_multiplier(model.heads["sts"].dense.kernel) == 1.0


def test_train_steps():
    config = FinetuningConfig("m", "/d", task_names=["sts"], **TINY)
    assert trainer.train_steps(config, 12) == int(12 // 4 * 2.0)
    with pytest.raises(ValueError, match="3 training records make 0 steps at batch size 4"):
        trainer.train_steps(config, 3)


def test_progress_lines_and_mixed_bfloat16(data_dir, capsys):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["sts"],
                              precision="mixed_bfloat16", **dict(TINY, init_checkpoint=None))
    try:
        results = run_finetuning(config)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    out = capsys.readouterr().out
    steps = int(12 // 4 * 2.0)  # 5 pairs doubled, padded to 12
    assert f"step {steps}/{steps} (100.0%) | {trainer.LOSS_NAME} " in out
    assert " seq/s | elapsed " in out
    assert np.isfinite(results[0]["sts"]["loss"])


def test_loss_is_reported_per_example_and_written_to_tensorboard(data_dir, tmp_path,
                                                                  monkeypatch, capsys):
    config = FinetuningConfig("tiny", str(data_dir), task_names=["sts"],
                              **dict(TINY, init_checkpoint=None, num_train_epochs=8.0))
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file))
    _, features = records.featurize(config, tasks, "train", is_training=True)
    features = records.pad_to_multiple(features, config.train_batch_size, len(tasks))
    summed = []  # the batch-summed loss each update optimised

    def recording_step(*args):
        step = make_train_step(*args)
        return lambda iterator: summed.append(float(step(iterator))) or summed[-1]

    make_train_step = trainer.make_train_step
    monkeypatch.setattr(trainer, "make_train_step", recording_step)
    strategy = tf.distribute.get_strategy()
    keras.utils.set_random_seed(1)
    model = build_finetuning_model(config, tasks)
    optimizer = trainer.build_optimizer(config, model, 24)
    logdir = str(tmp_path / "train")
    assert trainer.train(config, model, optimizer, features, 1, strategy, logdir) == 24
    per_example = np.array(summed) / config.train_batch_size  # 12 records, batch 4, 8 epochs
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert [line.split(" | ")[1] for line in lines] == [
        f"{trainer.LOSS_NAME} {per_example[i - 1]:.4g}" for i in (10, 20, 24)]
    scalars = curves.read_scalars(logdir)
    assert scalars["loss"][0] == [10, 20, 24]
    np.testing.assert_allclose(scalars["loss"][1], per_example[[9, 19, 23]], rtol=1e-6)
    schedule = optimizer.schedule  # the update that makes step t uses lr(t)
    np.testing.assert_allclose(scalars["learning_rate"][1],
                               [float(schedule(t)) for t in (10, 20, 24)], rtol=1e-6)
