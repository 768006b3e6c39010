"""Weights from checkpoints: a pretrained encoder, or an original fine-tuned model.

Variables are matched by their original TF1 names (`electra/*` for the encoder,
`task_specific/<task>/*` for the heads); anything else in a checkpoint is ignored.
"""

import os

import numpy as np

from electra_common import files
from electra_tf import checkpoints


def load_pretrained_encoder(encoder, init_checkpoint):
    """Fills `encoder` from a pretrained checkpoint (`electra/*` only).

    Args:
        encoder: the `Encoder` to fill.
        init_checkpoint: one of our model directories (with `config.json`, from pretraining
            or `convert_checkpoint`), or an original TF1 checkpoint prefix, or a directory
            holding one.
    Raises:
        FileNotFoundError: nothing at `init_checkpoint`.
        ValueError: the checkpoint's encoder does not have the encoder's shapes.
    """
    if not files.exists(init_checkpoint) and not files.exists(init_checkpoint + ".index"):
        raise FileNotFoundError(
            f"init_checkpoint {init_checkpoint}: not found. Pretrain a model there, convert "
            "an original checkpoint into it (python -m electra_tf.convert_checkpoint), or "
            "set \"init_checkpoint\": null to start from random weights")
    if files.exists(os.path.join(init_checkpoint, checkpoints.CONFIG_FILE)):
        source = checkpoints.load_model_dir(init_checkpoint).encoder
        values = {n: np.reshape(m.variable.numpy(), m.original_shape)
                  for n, m in checkpoints.encoder_variable_map(source).items()}
    else:
        values = checkpoints.read_checkpoint(init_checkpoint)
    load_encoder_weights(values, encoder, init_checkpoint)


def load_encoder_weights(values, encoder, where):
    """Assigns `electra/*` by original name, ignoring everything else.

    Args:
        values: {original name: array}, e.g. `checkpoints.read_checkpoint(prefix)`.
        encoder: the `Encoder` to fill.
        where: the checkpoint's path, for error messages.
    Raises:
        ValueError: a variable missing or of another shape; the message names each.
    """
    mapping = checkpoints.encoder_variable_map(encoder)
    problems = [f"{n}: checkpoint {list(values[n].shape) if n in values else 'missing'} "
                f"vs config {list(m.original_shape)}" for n, m in mapping.items()
                if n not in values or tuple(values[n].shape) != tuple(m.original_shape)]
    if problems:
        raise ValueError(f"{where}: the pretrained encoder does not match the fine-tuning "
                         "config (check model_size, embedding_size, model_hparam_overrides):"
                         "\n  " + "\n  ".join(problems))
    for name, m in mapping.items():
        m.variable.assign(np.reshape(values[name], m.variable.shape))


def load_finetuned_original(ckpt_prefix, model):
    """Fills a fine-tuning model from an original fine-tuned checkpoint: the encoder and
    every task head.

    Args:
        ckpt_prefix: the checkpoint prefix (or a directory holding one).
        model: a built `finetune.model.FinetuningModel` with the checkpoint's sizes and
            tasks (`build_finetuning_model(config, tasks)`).
    Returns:
        `model`.
    Raises:
        ValueError: a head variable missing from the checkpoint, one the tasks do not
            explain, or a shape mismatch; the message names each.
    """
    values = checkpoints.read_checkpoint(ckpt_prefix)
    load_encoder_weights(values, model.encoder, ckpt_prefix)
    heads = {n: m.variable for n, m in model.original_variables().items()
             if n.startswith("task_specific/")}
    in_ckpt = {n for n in values if n.startswith("task_specific/")
               and not n.endswith(("/adam_m", "/adam_v"))}
    problems = [f"missing from the checkpoint: {n}" for n in sorted(set(heads) - in_ckpt)]
    problems += [f"in the checkpoint but not in the tasks: {n}"
                 for n in sorted(in_ckpt - set(heads))]
    problems += [f"shape mismatch: {n} {list(values[n].shape)} vs {list(v.shape)}"
                 for n, v in heads.items() if n in values and values[n].shape != v.shape]
    if problems:
        raise ValueError(f"{ckpt_prefix}: the task heads do not match:\n  "
                         + "\n  ".join(problems))
    for name, variable in heads.items():
        variable.assign(values[name])
    return model
