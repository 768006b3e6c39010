"""SavedModels for TensorFlow Serving.

- `text_encoder`: raw text → features in the graph (the training tokenizer, truncation).
- `endpoints`: a network, its named outputs and its raw-text signatures.
- `examples`: requests as serialized tf.Examples.
- `module`: the saved `tf.Module` and its signatures.
- `warmup`: the warm-up requests TF Serving replays.
- `export`: a model directory → `<export_base>/<version>/`.
- `rest_json`: TF Serving's REST JSON ↔ tensor mapping.
- `local_server`: TF Serving's request handling on an export, without a server.
"""
