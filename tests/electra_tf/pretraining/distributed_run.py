"""Runs a tiny pretraining in a fresh process, for the tests that need one.

    python distributed_run.py mirrored DATA_DIR OUT.json   # one device vs MirroredStrategy
    python distributed_run.py worker DATA_DIR OUT.npz      # one MultiWorkerMirrored worker

A fresh process is needed: logical devices and collective ops are fixed at TF start-up.
"""

import json
import sys

import numpy as np
import tensorflow as tf

HPARAMS = dict(vocab_size=1024, max_seq_length=32, embedding_size=32, train_batch_size=8,
               eval_batch_size=8, learning_rate=1e-3, num_warmup_steps=0, seed=5,
               generator_hidden_size=0.5, iterations_per_loop=2, save_checkpoints_steps=100,
               model_hparam_overrides={"hidden_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "intermediate_size": 128,
                                       "hidden_dropout_prob": 0.0,
                                       "attention_probs_dropout_prob": 0.0})


def weights(trainer):
    return {n: m.variable.numpy() for n, m in trainer.names.items()}


def main(mode, data_dir, out):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from electra_tf.pretraining import trainer as training
    from electra_tf.config import PretrainingConfig
    if mode == "mirrored":
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
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        config = PretrainingConfig("multi", data_dir, num_train_steps=4, strategy="multi_worker",
                                   **HPARAMS)
        trainer = training.Pretrainer(config, strategy, log=print)
        trainer.train()
        np.savez(out, **weights(trainer))


if __name__ == "__main__":
    main(*sys.argv[1:])
