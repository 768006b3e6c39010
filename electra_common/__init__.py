"""What every layer of electra-tf shares, below all of them (no TensorFlow at import).

- `electra_common.files`: the one atomic-write helper (write beside, fsync, rename) and JSON
  reading with errors that name the file.
- `electra_common.cli`: the one command-line framework (absl flags, `--help` without
  importing TensorFlow, one error wrapper).
- `electra_common.protowire`: the few protobuf wire-format primitives the project encodes
  by hand.

Layers import downward only: `finetune` → `electra_tf` → `pretrain_data` → `electra_common`.
"""
