"""Runs a tiny pretraining in a fresh process, for the tests that need one.

    python distributed_run.py mirrored DATA_DIR OUT.json   # one device vs MirroredStrategy
    python distributed_run.py worker DATA_DIR OUT.npz [MODEL STEPS SAVE_STEPS]
                                                          # one MultiWorkerMirrored worker
    python distributed_run.py two_workers_on_one DATA_DIR OUT.npz [MODEL STEPS]
                                        # one device, each step the two workers' batches

A fresh process is needed: logical devices and collective ops are fixed at TF start-up.
A worker with `STALL_AT_CHECKPOINT=after:<step>` in its environment stops making progress
once its `checkpoint` state file names `ckpt-<step>`, with `before:<step>` just before it
saves `ckpt-<step>` (it prints `stalled before|after ckpt-<step>` and sleeps), so that a
test can kill it at a known point while its peer waits in a collective or saves.
"""

import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

HPARAMS = dict(vocab_size=1024, max_seq_length=32, embedding_size=32, train_batch_size=8,
               eval_batch_size=8, learning_rate=1e-3, num_warmup_steps=0, seed=5,
               generator_hidden_size=0.5, iterations_per_loop=2, save_checkpoints_steps=100,
               model_hparam_overrides={"hidden_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "intermediate_size": 128,
                                       "hidden_dropout_prob": 0.0,
                                       "attention_probs_dropout_prob": 0.0})
STALL_SECONDS = 600  # longer than any test waits: the test kills the process first


def weights(trainer):
    return {n: m.variable.numpy() for n, m in trainer.names.items()}


def stall_at_checkpoint(when, step):
    """Makes `CheckpointManager.save` of `ckpt-<step>` sleep `when` ("before", "after") it."""
    save = tf.train.CheckpointManager.save

    def stalling_save(self, *args, checkpoint_number=None, **kwargs):
        if when == "before" and checkpoint_number == step:
            print(f"stalled before ckpt-{step}", flush=True)
            time.sleep(STALL_SECONDS)
        path = save(self, *args, checkpoint_number=checkpoint_number, **kwargs)
        if when == "after" and checkpoint_number == step:
            print(f"stalled after ckpt-{step}", flush=True)
            time.sleep(STALL_SECONDS)
        return path

    tf.train.CheckpointManager.save = stalling_save


def two_workers_on_one(data_dir, out, model, steps):
    """One device trains on what two workers read: each step, worker 0's half of the
    global batch then worker 1's, with their example seeds (`Pretrainer.input_iterator`
    with 2 workers)."""
    from electra_tf.config import PretrainingConfig
    from electra_tf.pretraining import helpers, trainer as training
    from pretrain_data import reader

    class TwoWorkersOnOne(training.Pretrainer):
        def input_iterator(self, batch_size, seed, is_training=True, records=None):
            per_worker = batch_size // 2
            halves = []
            for worker in range(2):
                dataset = reader.get_dataset(
                    records or self.config.pretrain_tfrecords, self.config.max_seq_length,
                    batch_size, is_training=is_training, seed=seed,
                    input_context=tf.distribute.InputContext(2, worker, 2))
                halves.append(dataset.enumerate().map(
                    lambda i, batch, worker=worker: dict(batch, seeds=helpers.example_seeds(
                        seed, (i * 2 + worker) * per_worker, per_worker))))
            return iter(tf.data.Dataset.zip(tuple(halves)).map(
                lambda a, b: {k: tf.concat([a[k], b[k]], 0) for k in a}))

    config = PretrainingConfig(model, data_dir, **dict(HPARAMS, num_train_steps=int(steps)))
    trainer = TwoWorkersOnOne(config, tf.distribute.get_strategy(), log=lambda line: None)
    trainer.train()
    np.savez(out, **weights(trainer))


def main(mode, data_dir, out, model="multi", steps="4", save_steps="100"):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from electra_tf.pretraining import trainer as training
    from electra_tf.config import PretrainingConfig
    if mode == "two_workers_on_one":
        two_workers_on_one(data_dir, out, model, steps)
    elif mode == "mirrored":
        results = {}
        for name, strategy in (("one", tf.distribute.get_strategy()),
                               ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
            config = PretrainingConfig(name, data_dir, num_train_steps=2, **HPARAMS)
            trainer = training.Pretrainer(config, strategy, log=lambda line: None)
            losses = trainer.train()
            results[name] = {"losses": losses, "weights": weights(trainer),
                             "replicas": strategy.num_replicas_in_sync}
        diff = max(float(np.abs(results["one"]["weights"][n] - results["mirrored"]["weights"][n]).max())
                   for n in results["one"]["weights"])
        with open(out, "w") as f:
            json.dump({"one": results["one"]["losses"], "mirrored": results["mirrored"]["losses"],
                       "replicas": results["mirrored"]["replicas"], "max_weight_diff": diff}, f)
    else:
        if "STALL_AT_CHECKPOINT" in os.environ:
            when, step = os.environ["STALL_AT_CHECKPOINT"].split(":")
            stall_at_checkpoint(when, int(step))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        config = PretrainingConfig(model, data_dir, strategy="multi_worker", **dict(
            HPARAMS, num_train_steps=int(steps), save_checkpoints_steps=int(save_steps)))
        trainer = training.Pretrainer(config, strategy, log=lambda line: print(line, flush=True))
        trainer.train()
        np.savez(out, **weights(trainer))


if __name__ == "__main__":
    main(*sys.argv[1:])
