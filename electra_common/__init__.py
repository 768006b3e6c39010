"""What every layer of electra-tf shares, below all of them (no TensorFlow at import).

- `electra_common.files`: the one atomic-write helper (write beside, fsync, rename) and JSON
  reading with errors that name the file.
- `electra_common.cli`: the one command-line framework (absl flags, `--help` without
  importing TensorFlow, one error wrapper).
- `electra_common.protowire`: the protobuf wire-format primitives that pretraining records,
  written in bulk, are framed with (the protobuf API is too slow there).

Layers import downward only: `finetune` → `electra_tf` → `pretrain_data` → `electra_common`.
"""
