"""Text and corpora to pretraining TFRecords, and the tf.data pipeline that reads them.

Library (`examples`, `progress` and `synthetic` need no TensorFlow):
- `tokenization`: `FullTokenizer` (the original's ids, as TF ops), `load_vocab`, `check_vocab`;
  `unicode_classes`: the character classes it is built on.
- `sources`: corpus files, tar archives, tfds datasets; the UTF-8 line reader.
- `examples`: `ExampleBuilder` (the original's segmentation) and the fast serializer.
- `job`: one build process; `progress`: its progress line; `build`: the driver and the
  public build functions.
- `vocab`: WordPiece vocabulary learning; `reader`: the pretraining `tf.data` pipeline;
  `synthetic`: a generated corpus.

Commands (no TensorFlow until their flags are parsed; `--help` lists the flags):
`build_pretraining_dataset`, `build_openwebtext_pretraining_dataset`,
`build_tfds_pretraining_dataset`, `learn_vocab` (their shared flags: `cli_flags`).
"""
