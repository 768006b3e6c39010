"""ELECTRA in Keras 3 / TensorFlow 2, numerically identical to the original release.

The middle layer of the project (it imports `pretrain_data` and `electra_common`, never
`finetune`); one role per module:

- `config`, `hparams`: every pretraining hyperparameter and the config base.
- `models`: the networks (embeddings, attention, transformer, encoder, heads, ELECTRA).
- `pretraining`: the objective top to bottom, the trainer, the eval metrics.
- `optimization`: the original AdamWeightDecay, its schedule, layer-wise LR decay.
- `training`: what every training loop shares (strategies, the train step, progress).
- `checkpoints`: the one name table, original TF1 checkpoints, our model directories.
- `serving`: SavedModels for TF Serving (text encoder, endpoints, export, warm-up).
- `scoring`: text scores for re-ranking (Electric's one-pass −energy, masked-LM
  pseudo-log-likelihood).
- `flops`: FLOPs counted as the original does.
- command lines: `run_pretraining`, `convert_checkpoint`, `export_saved_model`, `score`,
  `saved_model_cli`.

The main job, which also fine-tunes, is a layer above `finetune`: `electra_quickstart`.

docs/architecture.md draws the whole picture.
"""

import os

# Keras 3 picks its backend at import time; this package is TensorFlow-only.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
