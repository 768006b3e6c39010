"""Pretraining TFRecords from OpenWebText, as the original's OpenWebText builder (spec §7.3).

Reads the tar archives in `<data-dir>/openwebtext/` (the OpenWebText release: each
archive holds text files, one web page each), tokenizes with `<data-dir>/vocab.txt`
and writes `<data-dir>/pretrain_tfrecords/pretrain_data.tfrecord-<i>-of-<n>`. Each text
file is one document; blank lines are dropped (`blanks_separate_docs=False`).

Unlike the original, archives are read in place (no extraction to `<data-dir>/tmp`)
and no directory is ever wiped; see `build_pretraining_dataset` for the other extras.

Usage:
  python -m pretrain_data.build_openwebtext_pretraining_dataset --data-dir data/ --seed 1
"""

import argparse
import os
import sys

import tensorflow as tf

from pretrain_data import build_pretraining_dataset as build_lib


def build_openwebtext_pretraining_dataset(data_dir, max_seq_length=128, num_processes=1,
                                          do_lower_case=True, strip_accents=True,
                                          num_out_files=1000, seed=None, overwrite=False,
                                          skip_invalid_lines=False, progress=True,
                                          vocab_file=None, output_dir=None):
    """Writes pretraining shards from the OpenWebText tar archives of `data_dir`.

    Args:
      data_dir: holds `openwebtext/*` (tar archives, any compression tarfile reads)
        and `vocab.txt`.
      vocab_file, output_dir: override `<data_dir>/vocab.txt` and
        `<data_dir>/pretrain_tfrecords`.
      other args: as `build_pretraining_dataset.build_pretraining_dataset`.

    Returns:
      A `BuildSummary`.
    """
    archives = build_lib.list_corpus_files(os.path.join(data_dir, "openwebtext"))
    return build_lib.run_build(
        "tars", archives, vocab_file or os.path.join(data_dir, "vocab.txt"),
        output_dir or os.path.join(data_dir, "pretrain_tfrecords"), max_seq_length,
        num_processes, False, do_lower_case, strip_accents, num_out_files, seed, overwrite,
        skip_invalid_lines, progress)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True,
                        help="Location of data (vocab file, corpus, etc).")
    parser.add_argument("--vocab-file", default=None, help="Default: <data-dir>/vocab.txt.")
    parser.add_argument("--output-dir", default=None,
                        help="Default: <data-dir>/pretrain_tfrecords.")
    build_lib.add_common_flags(parser)
    args = parser.parse_args(argv)
    try:
        summary = build_openwebtext_pretraining_dataset(
            args.data_dir, args.max_seq_length, args.num_processes, args.do_lower_case,
            args.strip_accents, args.num_out_files, args.seed, args.overwrite,
            args.skip_invalid_lines, not args.quiet, args.vocab_file, args.output_dir)
    except (build_lib.CorpusError, FileNotFoundError, FileExistsError, PermissionError,
            ValueError, tf.errors.OpError) as e:
        sys.exit("error: %s" % e)
    print(summary)


if __name__ == "__main__":
    from pretrain_data import build_openwebtext_pretraining_dataset as _module
    _module.main()
