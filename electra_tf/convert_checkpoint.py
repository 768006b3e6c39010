"""Converts between original TF1 ELECTRA checkpoints and electra_tf model directories.

    python -m electra_tf.convert_checkpoint --from-original CKPT_PREFIX [--config JSON] \
        --output DIR
    python -m electra_tf.convert_checkpoint --to-original DIR --output CKPT_PREFIX
"""

import os

from absl import app, flags

from electra_tf import checkpoints, cli
from electra_tf import config as config_lib

flags.DEFINE_string("from-original", None, "Original checkpoint prefix (or its directory).")
flags.DEFINE_string("to-original", None, "electra_tf model directory to write back.")
flags.DEFINE_string("config", None, "Hyperparameters as JSON or a .json path "
                    "(as --hparams of run_pretraining); inferred from the shapes if omitted.")
flags.DEFINE_string("output", None, "Output directory (--from-original) or checkpoint "
                    "prefix (--to-original). Must not exist yet.")
FLAGS = flags.FLAGS


def config_for(output_dir, hparams):
    """A `PretrainingConfig` whose model dir is `output_dir` (`<data>/models/<name>`)."""
    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    data_dir = os.path.dirname(parent) if os.path.basename(parent) == "models" else parent
    hparams = dict(config_lib.parse_hparams(hparams), model_dir=output_dir)
    return config_lib.PretrainingConfig(os.path.basename(output_dir), data_dir, **hparams)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    source, target = FLAGS["from-original"].value, FLAGS["to-original"].value
    if (source is None) == (target is None) or FLAGS.output is None:
        raise app.UsageError("Give exactly one of --from-original or --to-original, "
                             "and --output.")
    if source is not None:
        config = config_for(FLAGS.output, FLAGS.config) if FLAGS.config else None
        loaded = checkpoints.convert_from_original(source, FLAGS.output, config)
        for name in loaded.ignored:
            print(f"ignored (not part of the pretraining models): {name}")
        print(f"read {checkpoints.resolve_checkpoint(source)}: "
              f"generator={'yes' if loaded.generator is not None else 'no'}, "
              f"discriminator={'yes' if loaded.discriminator is not None else 'no'}, "
              f"global_step={loaded.global_step}, "
              f"Adam slots for {len(loaded.optimizer_slots)} variables")
        print(f"wrote {FLAGS.output}")
    else:
        if FLAGS.config:
            raise app.UsageError("--config applies to --from-original only; the model "
                                 "directory holds its own config.json")
        print(f"wrote {checkpoints.convert_to_original(target, FLAGS.output)}")


if __name__ == "__main__":
    cli.run(main)
