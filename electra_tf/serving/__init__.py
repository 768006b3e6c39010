"""SavedModels for TensorFlow Serving.

- `text_encoder`: raw text → features in the graph (the training tokenizer, truncation).
- `endpoints`: a network, its named outputs and its raw-text signatures.
- `module`: the saved `tf.Module` and its signatures.
- `warmup`: the warm-up requests TF Serving replays.
- `export`: a model directory → `<export_base>/<version>/`.
"""
