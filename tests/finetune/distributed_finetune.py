"""Fine-tunes a tiny tagging model in a fresh process (logical devices and collectives are
fixed at TF start-up), for the tests to compare with one device.

    python distributed_finetune.py mirrored DATA_DIR OUT.json  # one device, then 2 logical CPUs
    python distributed_finetune.py worker DATA_DIR OUT.json    # one MultiWorkerMirrored worker

Writes {run: {"results": ..., "replicas": n, "weights": {name: list}}}. Tagging has no
dropout in its head and the encoder's dropout is off, so every run must agree.
"""

import json
import sys

import tensorflow as tf

HPARAMS = {"init_checkpoint": None, "vocab_size": 1024, "embedding_size": 32,
           "model_hparam_overrides": {"hidden_size": 32, "intermediate_size": 64,
                                      "num_attention_heads": 2, "num_hidden_layers": 1,
                                      "hidden_dropout_prob": 0.0,
                                      "attention_probs_dropout_prob": 0.0},
           "task_names": ["chunk"], "max_seq_length": 16, "train_batch_size": 4,
           "eval_batch_size": 4, "predict_batch_size": 4, "num_train_epochs": 2.0,
           "learning_rate": 1e-3, "seed": 3, "use_tfrecords_if_existing": False}


def run(name, data_dir, strategy):
    from finetune import trials
    from finetune.config import FinetuningConfig

    config = FinetuningConfig(name, data_dir, **HPARAMS)
    results = trials.run_finetuning(config, strategy)
    # Every worker holds the same weights; only the chief wrote the model directory.
    weights = {m_name: m.variable.numpy().reshape(m.original_shape).tolist()
               for m_name, m in LAST_MODEL[0].original_variables().items()}
    return {"results": results, "replicas": strategy.num_replicas_in_sync, "weights": weights}


LAST_MODEL = []


def main(mode, data_dir, out):
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from finetune import trials

    load_or_train = trials.load_or_train

    def keep(*args, **kwargs):  # remember the trained model to report its weights
        LAST_MODEL[:] = [load_or_train(*args, **kwargs)]
        return LAST_MODEL[0]

    trials.load_or_train = keep
    if mode == "mirrored":
        report = {name: run(name, data_dir, strategy) for name, strategy in (
            ("one", tf.distribute.get_strategy()),
            ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])))}
    else:
        report = {"worker": run("multi", data_dir, tf.distribute.MultiWorkerMirroredStrategy())}
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
