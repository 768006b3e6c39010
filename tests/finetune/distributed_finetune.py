"""Fine-tunes a tiny tagging model on one device and under MirroredStrategy over two
logical CPUs, in a fresh process (logical devices are fixed at TF start-up).

    python distributed_finetune.py DATA_DIR OUT.json

Writes {strategy: {"results": ..., "weights": {name: list}}} for the test to compare.
Tagging has no dropout in its head; the encoder's dropout is off, so the two runs must agree.
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


def main(data_dir, out):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from electra_tf import checkpoints
    from finetune import run_finetuning
    from finetune.config import FinetuningConfig

    report = {}
    for name, strategy in (("one", tf.distribute.get_strategy()),
                           ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        config = FinetuningConfig(name, data_dir, **HPARAMS)
        results = run_finetuning.run_finetuning(config, strategy)
        prefix = checkpoints.resolve_checkpoint(config.model_dir + "_1/original")
        weights = checkpoints.read_checkpoint(prefix)
        report[name] = {"results": results, "replicas": strategy.num_replicas_in_sync,
                        "weights": {k: v.tolist() for k, v in weights.items()
                                    if not k.endswith(("adam_m", "adam_v", "global_step"))}}
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
