"""Serving fine-tuned models with TensorFlow Serving (exported by `electra_tf.serving.export`).

- `module`: `build_serving_module(model_dir)`, the entry point a fine-tuned model
  directory names in its `serving.json`; one endpoint per task (`task_endpoint`).
- `task_outputs`: each task type's outputs on int32 features (the `<task>_ids` signature).
- `text`: raw text → features and back, for tagging (words) and QA (question, context).
"""

from finetune.serving.module import build_serving_module, task_endpoint

__all__ = ["build_serving_module", "task_endpoint"]
