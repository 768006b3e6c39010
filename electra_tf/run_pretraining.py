"""Pre-trains (or evaluates) ELECTRA, with the original command line.

    python -m electra_tf.run_pretraining --data-dir D --model-name M [--hparams JSON]

Data from D/pretrain_tfrecords/pretrain_data.tfrecord*, vocabulary D/vocab.txt, model in
D/models/M. Re-running the same command resumes from the latest checkpoint.
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("data-dir", None, "Location of data files (model weights, etc).",
                        flag_values=fv, required=True)
    flags.DEFINE_string("model-name", None, "The name of the model being pre-trained.",
                        flag_values=fv, required=True)
    flags.DEFINE_string("hparams", "{}", "JSON dict of model hyperparameters, or a .json path.",
                        flag_values=fv)


def main(args):
    from electra_tf.config import PretrainingConfig  # noqa: PLC0415 (after the flags)
    from electra_tf.hparams import parse_hparams  # noqa: PLC0415
    from electra_tf.pretraining.trainer import train_or_eval  # noqa: PLC0415

    train_or_eval(PretrainingConfig(args.model_name, args.data_dir,
                                    **parse_hparams(args.hparams)))


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
