"""Text from tensorflow-datasets as a pretraining corpus (e.g. a Wikipedia config).

Each dataset example is one document; inside it, lines are separated by "\\n" and,
with `blanks_separate_docs`, blank lines also separate documents (as for files).

Usage:
  python -m pretrain_data.tfds_source --dataset wikipedia/20230601.en --split train \\
      --text-feature text --vocab-file vocab.txt --output-dir pretrain_tfrecords --seed 1
"""

import argparse
import sys

import tensorflow as tf

from pretrain_data import build_pretraining_dataset as build_lib


def units(dataset, split, text_feature, data_dir=None, job_id=0, num_jobs=1):
    """Yields (name, chunks) units, one per example, for process `job_id` of `num_jobs`.

    Raises:
      KeyError: if the dataset has no feature `text_feature` (naming the ones it has).
    """
    import tensorflow_datasets as tfds  # imported lazily: it is slow to import
    ds = tfds.load(dataset, split=split, data_dir=data_dir, shuffle_files=False,
                   download=False)
    if text_feature not in ds.element_spec:
        raise KeyError("Dataset %s has no feature %r; it has %s"
                       % (dataset, text_feature, sorted(ds.element_spec)))
    ds = ds.shard(num_jobs, job_id).map(lambda example: example[text_feature])
    for index, text in enumerate(ds.as_numpy_iterator()):
        name = "%s/%s[%d]" % (dataset, split, index * num_jobs + job_id)
        yield name, (lambda text=text: iter([text]))


def build_from_tfds(dataset, split, text_feature, vocab_file, output_dir, data_dir=None,
                    max_seq_length=128, num_processes=1, blanks_separate_docs=True,
                    do_lower_case=True, strip_accents=True, num_out_files=1000, seed=None,
                    overwrite=False, skip_invalid_lines=False, progress=True):
    """Writes pretraining shards from a prepared tfds dataset (it must already be built
    in `data_dir`; nothing is downloaded).

    Args:
      dataset: a tfds name, with config/version, e.g. "wikipedia/20230601.en".
      split: a tfds split, e.g. "train" or "train[:10%]".
      text_feature: the text feature, e.g. "text".
      data_dir: the tfds data directory (default: tfds' default).
      other args: as `build_pretraining_dataset.build_pretraining_dataset`.

    Returns:
      A `BuildSummary`.
    """
    return build_lib.run_build(
        "tfds", (dataset, split, text_feature, data_dir), vocab_file, output_dir,
        max_seq_length, num_processes, blanks_separate_docs, do_lower_case, strip_accents,
        num_out_files, seed, overwrite, skip_invalid_lines, progress)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="tfds name, e.g. wikipedia/20230601.en")
    parser.add_argument("--split", default="train")
    parser.add_argument("--text-feature", default="text")
    parser.add_argument("--data-dir", default=None, help="tfds data directory.")
    parser.add_argument("--vocab-file", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--blanks-separate-docs", default=True, type=bool)
    build_lib.add_common_flags(parser)
    args = parser.parse_args(argv)
    try:
        summary = build_from_tfds(
            args.dataset, args.split, args.text_feature, args.vocab_file, args.output_dir,
            args.data_dir, args.max_seq_length, args.num_processes, args.blanks_separate_docs,
            args.do_lower_case, args.strip_accents, args.num_out_files, args.seed,
            args.overwrite, args.skip_invalid_lines, not args.quiet)
    except (build_lib.CorpusError, FileNotFoundError, FileExistsError, PermissionError,
            KeyError, ValueError, tf.errors.OpError) as e:
        sys.exit("error: %s" % e)
    print(summary)


if __name__ == "__main__":
    from pretrain_data import tfds_source as _module
    _module.main()
