"""The one training step of the project, for pretraining and fine-tuning alike."""

import tensorflow as tf


def train_step(loss_fn, optimizer, variables):
    """One update: the loss, its gradients, the optimizer (which clips and applies).

    Runs in a replica context: under a `tf.distribute` strategy the optimizer sums the
    replicas' gradients before its global-norm clip, so each replica's loss must be its
    share of the batch loss (the shares add up to the loss of the whole batch). The
    gradients go to the optimizer as the tape gives them: an `IndexedSlices` (a table only
    looked up) keeps its per-lookup rows, which the clip may count one by one.

    Args:
        loss_fn: a function of no arguments returning `(loss, outputs)`: the scalar loss of
            this replica's share of the batch, and anything to return.
        optimizer: an `optimization.AdamWeightDecay`.
        variables: the variables to update, in the order the optimizer was built with.
    Returns:
        `outputs`.
    """
    with tf.GradientTape() as tape:
        loss, outputs = loss_fn()
        scaled = optimizer.scale_loss(loss)
    optimizer.apply(tape.gradient(scaled, variables), variables)
    return outputs
