"""Pretraining TFRecords from OpenWebText, as the original's OpenWebText builder.

Reads the tar archives in `<data-dir>/openwebtext/` (the OpenWebText release: each archive
holds text files, one web page each), tokenizes with `<data-dir>/vocab.txt` and writes
`<data-dir>/pretrain_tfrecords/pretrain_data.tfrecord-<i>-of-<n>`. Each text file is one
document; blank lines are dropped.

Unlike the original, archives are read in place (no extraction to `<data-dir>/tmp`) and
no directory is ever wiped; see `pretrain_data.build_pretraining_dataset --help` for the
other additions.

Usage:
  python -m pretrain_data.build_openwebtext_pretraining_dataset --data-dir data/ --seed 1
"""

from absl import flags

from electra_common import cli
from pretrain_data import cli_flags


def define_flags(fv):
    flags.DEFINE_string("data-dir", None, "Location of data (vocab file, corpus, etc).",
                        flag_values=fv, required=True)
    flags.DEFINE_string("vocab-file", None, "Default: <data-dir>/vocab.txt.", flag_values=fv)
    flags.DEFINE_string("output-dir", None, "Default: <data-dir>/pretrain_tfrecords.",
                        flag_values=fv)
    cli_flags.define_build_flags(fv)


def main(args):
    from pretrain_data import build  # noqa: PLC0415 (TensorFlow: after the flags)
    print(build.build_openwebtext_pretraining_dataset(args.data_dir, args.vocab_file,
                                                      args.output_dir,
                                                      **cli_flags.build_options(args)))


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
