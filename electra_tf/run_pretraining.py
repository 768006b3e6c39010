"""Pre-trains (or evaluates) ELECTRA, with the original command line.

    python -m electra_tf.run_pretraining --data-dir D --model-name M [--hparams JSON]
        [--allow-changed-hparams learning_rate,...]
    python -m electra_tf.run_pretraining --list-hparams [--hparams JSON]

Data from D/pretrain_tfrecords/pretrain_data.tfrecord*, vocabulary D/vocab.txt, model in
D/models/M. Re-running the same command resumes from the latest checkpoint.
"""

from absl import flags

from electra_common import cli
from electra_tf import hparams


def define_flags(fv):
    hparams.define_flags(fv, "The name of the model being pre-trained.")
    flags.DEFINE_list(
        "allow-changed-hparams", [], "Hparams that may differ from the run being resumed "
        "(e.g. learning_rate after divergence); others are an error.", flag_values=fv)


def main(args):
    from electra_tf.config import PretrainingConfig  # noqa: PLC0415 (after the flags)

    config = PretrainingConfig.from_flags(args)  # a misspelt hparam stops here, before TF
    from electra_tf.pretraining.trainer import train_or_eval  # noqa: PLC0415

    train_or_eval(config, allow_changes=args.allow_changed_hparams)


def list_hparams(args):
    from electra_tf.config import PretrainingConfig  # noqa: PLC0415 (after the flags)

    return PretrainingConfig.describe_flags(args)


def run():
    cli.run(main, define_flags, __doc__, list_hparams=list_hparams)


if __name__ == "__main__":
    run()
