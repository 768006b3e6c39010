"""The original ELECTRA optimizer: AdamWeightDecay, its LR schedule, layer-wise LR decay.

Reproduces `model/optimization.py` of the original (documented in docs/optimizer.md):
Adam without bias correction and with ε outside the square root, decoupled weight decay
scaled by the LR and excluded by a regex on the *original* variable name, one global-norm
clip at 1.0 over all gradients, the warm-up that multiplies a polynomially decaying LR, and
(for fine-tuning) layer-wise LR decay. The optimizer state moves to and from the original
checkpoint format (`<var>/adam_m`, `<var>/adam_v`, `global_step`).
"""

from electra_tf.optimization.adam_weight_decay import AdamWeightDecay
from electra_tf.optimization.layerwise import layerwise_lr_multipliers
from electra_tf.optimization.schedule import WarmupPolynomialDecay

__all__ = ["AdamWeightDecay", "WarmupPolynomialDecay", "create_optimizer",
           "layerwise_lr_multipliers", "pretraining_optimizer"]


def create_optimizer(learning_rate, num_train_steps, weight_decay_rate=0.01, warmup_steps=0,
                     warmup_proportion=0.0, lr_decay_power=1.0, layerwise_lr_decay_power=-1.0,
                     n_transformer_layers=None, variables=None, clip_norm=1.0,
                     gradient_accumulation_steps=1, precision="float32",
                     clip_norm_of_sparse_gradients="per_lookup"):
    """The original `optimization.create_optimizer`: schedule, AdamWeightDecay, clip at 1.0.

    Args:
        learning_rate, num_train_steps, weight_decay_rate, warmup_steps, warmup_proportion,
        lr_decay_power, layerwise_lr_decay_power, n_transformer_layers: as the original.
        variables: {original name: `Mapped` or variable}, given to `set_original_names`.
        clip_norm: the global-norm clip (the original's is 1.0).
        gradient_accumulation_steps: micro-batches per update.
        precision: "mixed_float16" turns on dynamic loss scaling.
        clip_norm_of_sparse_gradients: "per_lookup" (the original off TPU) or "dense" (on
            TPU); the config's resolved value.
    Returns:
        An `AdamWeightDecay`.
    """
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, warmup_steps,
                                     warmup_proportion, lr_decay_power)
    optimizer = AdamWeightDecay(schedule, weight_decay_rate=weight_decay_rate,
                                layerwise_lr_decay_power=layerwise_lr_decay_power,
                                n_transformer_layers=n_transformer_layers, clip_norm=clip_norm,
                                gradient_accumulation_steps=gradient_accumulation_steps,
                                clip_norm_of_sparse_gradients=clip_norm_of_sparse_gradients,
                                dynamic_loss_scale=precision == "mixed_float16")
    if variables is not None:
        optimizer.set_original_names(variables)
    return optimizer


def pretraining_optimizer(config, variables):
    """The optimizer `run_pretraining` builds from a `PretrainingConfig` (no layer-wise LR).

    Args:
        config: a `PretrainingConfig`.
        variables: {original name: `Mapped`}, i.e. `checkpoints.variable_map(models)`.
    """
    return create_optimizer(config.learning_rate, config.num_train_steps,
                            weight_decay_rate=config.weight_decay_rate,
                            warmup_steps=config.num_warmup_steps,
                            lr_decay_power=config.lr_decay_power, variables=variables,
                            gradient_accumulation_steps=config.gradient_accumulation_steps,
                            precision=config.precision,
                            clip_norm_of_sparse_gradients=config.clip_norm_of_sparse_gradients)
