"""Pre-trains (or evaluates) ELECTRA, with the original command line.

    python -m electra_tf.run_pretraining --data-dir D --model-name M [--hparams JSON]

Data from `D/pretrain_tfrecords/pretrain_data.tfrecord*`, vocabulary `D/vocab.txt`, model in
`D/models/M`. Re-running the same command resumes from the latest checkpoint.
"""

from absl import app, flags

from electra_tf import cli, config as config_lib
from electra_tf import training

flags.DEFINE_string("data-dir", None, "Location of data files (model weights, etc).")
flags.DEFINE_string("model-name", None, "The name of the model being pre-trained.")
flags.DEFINE_string("hparams", "{}", "JSON dict of model hyperparameters, or a .json path.")
flags.mark_flags_as_required(["data-dir", "model-name"])
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = config_lib.PretrainingConfig(FLAGS["model-name"].value, FLAGS["data-dir"].value,
                                          **config_lib.parse_hparams(FLAGS.hparams))
    training.train_or_eval(config)


if __name__ == "__main__":
    cli.run(main)
