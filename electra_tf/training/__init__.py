"""What every training loop of the project shares (pretraining and fine-tuning).

- `distribute`: the `tf.distribute` strategy a config names, workers, cross-replica sums.
- `divergence`: a loss rising by orders of magnitude, non-finite weights and slots.
- `step`: the one training step (loss, gradients, optimizer update).
- `progress`: progress lines (and a bar on a terminal) with throughput and ETA.
- `results`: the one writer of results files (JSON and text, atomically).
- `summaries`: TensorBoard scalars.
- `curves`: learning curves: the scalars read back, drawn as a PNG.
"""
