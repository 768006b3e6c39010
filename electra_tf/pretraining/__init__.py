"""Pretraining ELECTRA: the objective, its random draws, the trainer and its eval metrics.

- `helpers`: the original `pretrain_helpers` (masking, gather/scatter, Gumbel sampling).
- `objective`: the whole loss, top to bottom: mask → generator → sample → discriminator.
- `trainer`: the training loop under `tf.distribute`, checkpoints, resume, eval.
- `metrics`: the original's eval metrics.
"""
