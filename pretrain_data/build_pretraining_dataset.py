"""Writes pretraining examples (TFRecords) from raw text, as the original ELECTRA builder.

Same flags, segmentation and output as the original `build_pretraining_dataset.py`
(docs/data.md): every file of --corpus-dir is read line by line, lines are tokenized,
packed into `[CLS] A [SEP] B [SEP]` examples of --max-seq-length ids and written
round-robin into `pretrain_data.tfrecord-<i>-of-<n>` shards with the features
`input_ids`, `input_mask`, `segment_ids` (int64).

Differences from the original, all additions:
  * --seed makes the output reproducible (for a given seed, corpus, number of processes
    and shards); without it, as the original, every run differs.
  * lines are tokenized in batches with the graph tokenizer (the same ids as one by one);
  * a progress line with tokens/s, and a summary at the end;
  * --num-out-files (default 1000 as the original);
  * the output directory is never wiped: shards are written under hidden temporary names
    and renamed when every process has succeeded; on failure only the files this run
    wrote are removed. Existing shards are an error unless --overwrite.
  * clear errors naming the file for a missing corpus/vocab, a vocab without the special
    tokens, an empty corpus, an unwritable output directory and invalid UTF-8 (file and
    line). The original crashes with a bare UnicodeDecodeError on the first invalid
    byte; this stops too, but says where (--skip-invalid-lines drops such lines instead).

Usage:
  python -m pretrain_data.build_pretraining_dataset --corpus-dir corpus/ \\
      --vocab-file vocab.txt --output-dir pretrain_tfrecords --seed 1
"""

from absl import flags

from electra_common import cli
from pretrain_data import cli_flags


def define_flags(fv):
    flags.DEFINE_string("corpus-dir", None, "Location of pre-training text files.",
                        flag_values=fv, required=True)
    cli_flags.define_text_build_flags(fv)


def main(args):
    from pretrain_data import build  # noqa: PLC0415 (TensorFlow: after the flags)
    print(build.build_pretraining_dataset(args.corpus_dir, args.vocab_file, args.output_dir,
                                          blanks_separate_docs=args.blanks_separate_docs,
                                          **cli_flags.build_options(args)))


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
