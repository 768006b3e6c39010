"""Pretraining TFRecords from a text feature of tensorflow-datasets (e.g. Wikipedia).

Each dataset example is one document; inside it, lines are separated by "\\n" and, with
--blanks-separate-docs (the default), blank lines also separate documents (as for files).
The dataset must already be prepared in --data-dir: nothing is downloaded. The other
flags and the output are those of `pretrain_data.build_pretraining_dataset`.

Usage:
  python -m pretrain_data.build_tfds_pretraining_dataset --dataset wikipedia/20230601.en \\
      --split train --text-feature text --vocab-file vocab.txt \\
      --output-dir pretrain_tfrecords --seed 1
"""

from absl import flags

from electra_common import cli
from pretrain_data import cli_flags


def define_flags(fv):
    flags.DEFINE_string("dataset", None, "tfds name, e.g. wikipedia/20230601.en",
                        flag_values=fv, required=True)
    flags.DEFINE_string("split", "train", "tfds split, e.g. train or train[:10%].",
                        flag_values=fv)
    flags.DEFINE_string("text-feature", "text", "The text feature.", flag_values=fv)
    flags.DEFINE_string("data-dir", None, "tfds data directory (default: tfds' default).",
                        flag_values=fv)
    cli_flags.define_text_build_flags(fv)


def main(args):
    from pretrain_data import build  # noqa: PLC0415 (TensorFlow: after the flags)
    print(build.build_from_tfds(args.dataset, args.split, args.text_feature, args.vocab_file,
                                args.output_dir, args.data_dir,
                                blanks_separate_docs=args.blanks_separate_docs,
                                **cli_flags.build_options(args)))


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
