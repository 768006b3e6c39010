"""Original TF1 checkpoints, read and written losslessly with exactly the original's names.

Names come from the one table (`checkpoints.names`). Adam slots and `global_step` are
returned as optimizer state; fine-tuning heads (`task_specific/*`) are listed as ignored.
"""

import dataclasses
import json
import logging
import os
import re

import numpy as np
import tensorflow as tf

from electra_common import files
from electra_tf.checkpoints.names import variable_map
from electra_tf.config import PretrainingConfig
from electra_tf.models import ElectraModels, build_models

# Checkpoint entries that are not model weights. Adam slots are returned as optimizer
# state; `task_specific/*` (fine-tuning heads) belongs to the finetune package.
_SLOT_SUFFIXES = ("/adam_m", "/adam_v")
_IGNORED = (re.compile(r"^task_specific/"),)

log = logging.getLogger(__name__)


@dataclasses.dataclass
class OriginalCheckpoint:
    """What `load_original` returns.

    Attributes:
        config: the `PretrainingConfig` (given, or inferred from the shapes).
        generator, discriminator: Keras models (None when the checkpoint has none).
        encoder: the discriminator's encoder (`electra/*`).
        global_step: int, or None when absent.
        optimizer_slots: {original variable name: {"adam_m": array, "adam_v": array}}.
        ignored: names in the checkpoint deliberately not loaded (fine-tuning heads).
    """

    config: PretrainingConfig
    generator: object
    discriminator: object
    encoder: object
    global_step: int | None
    optimizer_slots: dict
    ignored: list

    @property
    def models(self):
        return ElectraModels(self.config, self.generator, self.discriminator, self.encoder)

    def summary(self):
        """What was read: the networks and optimizer state, then each ignored variable."""
        lines = [f"generator={'yes' if self.generator is not None else 'no'}, "
                 f"discriminator={'yes' if self.discriminator is not None else 'no'}, "
                 f"global_step={self.global_step}, "
                 f"Adam slots for {len(self.optimizer_slots)} variables"]
        lines += [f"ignored (not part of the pretraining models): {n}" for n in self.ignored]
        return "\n".join(lines)


def resolve_checkpoint(path):
    """A checkpoint prefix from a prefix or a directory; a clear error if there is none."""
    if tf.io.gfile.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(f"{path}: directory holds no TF checkpoint "
                                    "(no 'checkpoint' state file)")
        path = prefix
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"{path}.index: no such file (expected a TF1 checkpoint "
                                "prefix such as .../model.ckpt-1000000)")
    if not tf.io.gfile.glob(path + ".data-*"):
        raise FileNotFoundError(f"{path}.data-*: no data file beside the index")
    return path


def read_checkpoint(prefix):
    """Reads every tensor of a checkpoint into a dict of numpy arrays."""
    prefix = resolve_checkpoint(prefix)
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
    except (tf.errors.OpError, ValueError) as e:
        raise ValueError(f"{prefix}: unreadable checkpoint index: "
                         f"{getattr(e, 'message', e)}") from None
    values = {}
    for name in names:
        try:
            values[name] = reader.get_tensor(name)
        except (tf.errors.OpError, IndexError) as e:
            raise ValueError(f"{prefix}: cannot read variable {name!r} (truncated or "
                             f"corrupt data file?): {getattr(e, 'message', e)}") from None
    return values


def infer_config(shapes, model_name="converted", data_dir="."):
    """A `PretrainingConfig` that reproduces the shapes of an original checkpoint.

    Args:
        shapes: dict original name -> shape.
        model_name, data_dir: as `PretrainingConfig`.
    Returns:
        A `PretrainingConfig` with `infer_hparams(shapes)`.
    """
    return PretrainingConfig(model_name, data_dir, **infer_hparams(shapes))


def infer_hparams(shapes):
    """The hyperparameters that reproduce the shapes of an original checkpoint.

    The head count cannot be read from shapes; it is taken as max(1, H // 64), the
    original's own derivation (true for every released model), and a warning says so and
    gives the `--config` that overrides it. Pass a config otherwise.

    Args:
        shapes: dict original name -> shape.
    Returns:
        A dict of hyperparameters.
    """
    def need(name):
        if name not in shapes:
            raise ValueError(f"not an ELECTRA checkpoint: it has no variable {name!r}")
        return tuple(shapes[name])

    vocab_size, emb = need("electra/embeddings/word_embeddings")
    hidden, num_layers, inter = _encoder_shape(shapes, "electra", need)
    hparams = {"vocab_size": vocab_size, "embedding_size": emb,
               "model_hparam_overrides": {
                   "hidden_size": hidden, "num_hidden_layers": num_layers,
                   "intermediate_size": inter,
                   "max_position_embeddings": need("electra/embeddings/position_embeddings")[0],
                   "type_vocab_size": need("electra/embeddings/token_type_embeddings")[0]}}
    if inter == 4 * hidden:
        del hparams["model_hparam_overrides"]["intermediate_size"]
    gen_scope = next((s for s in ("generator_ltr", "generator") if _has(shapes, s + "/")),
                     None)
    if gen_scope is not None:
        gen_hidden, gen_layers, _ = _encoder_shape(shapes, gen_scope, need)
        hparams["generator_hidden_size"] = gen_hidden / hidden
        hparams["generator_layers"] = gen_layers / num_layers
        hparams["untied_generator_embeddings"] = _has(shapes, gen_scope + "/embeddings/")
        if gen_scope == "generator_ltr":
            hparams.update(electric_objective=True, electra_objective=False)
    elif "generator_predictions/output_bias" in shapes:
        if _has(shapes, "discriminator_predictions/"):
            hparams["untied_generator"] = False
        else:
            hparams["electra_objective"] = False
    else:  # discriminator (or encoder) only: no generator network
        hparams["uniform_generator"] = True
    _warn_assumed_heads(hparams, hidden)
    return hparams


def _warn_assumed_heads(hparams, hidden):
    """Logs the head count taken for the discriminator, and the exact `--config` (these
    hparams, heads included) to give instead. (The generator's is always H_g // 64.)"""
    heads = max(1, hidden // 64)
    explicit = dict(hparams, model_hparam_overrides=dict(hparams["model_hparam_overrides"],
                                                         num_attention_heads=heads))
    log.warning("num_attention_heads=%d assumed: a TF1 checkpoint does not store the head "
                "count, so it is max(1, hidden_size %d // 64), the original's rule (true of "
                "every released model). If the model was trained with another count, "
                "convert with it in --config '%s' (in Python: load_original(ckpt, config))",
                heads, hidden, json.dumps(explicit))


def _has(shapes, prefix):
    return any(name.startswith(prefix) for name in shapes)


def _encoder_shape(shapes, scope, need):
    layers = {int(m.group(1)) for n in shapes
              if (m := re.match(rf"{scope}/encoder/layer_(\d+)/", n))}
    if not layers:
        raise ValueError(f"checkpoint has no {scope}/encoder/layer_* variables")
    hidden = need(f"{scope}/encoder/layer_0/attention/self/query/kernel")[1]
    inter = need(f"{scope}/encoder/layer_0/intermediate/dense/kernel")[1]
    return hidden, max(layers) + 1, inter


def load_original(ckpt_prefix, config=None):
    """Reads an original TF1 ELECTRA checkpoint into our models.

    Args:
        ckpt_prefix: a checkpoint prefix (`.../model.ckpt`) or a directory holding one.
        config: a `PretrainingConfig`; inferred from the shapes when None. Every shape the
            config implies must match the checkpoint.
    Returns:
        `OriginalCheckpoint` with `.config`, `.generator`, `.discriminator`, `.encoder`,
        `.global_step` and `.optimizer_slots`.
    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: unreadable data, or variables missing, unexpected or mis-shaped; the
            message names every one.
    """
    values = read_checkpoint(ckpt_prefix)
    shapes = {name: value.shape for name, value in values.items()}
    weights, slots, ignored, global_step = _split(values)
    if config is None:
        config = infer_config({n: shapes[n] for n in weights})
    models = build_models(
        config,
        generator=any(n.startswith(("generator", "cloze_predictions")) for n in weights),
        discriminator_head=_has(weights, "discriminator_predictions/"))
    mapping = variable_map(models)
    _check_match(mapping, {n: shapes[n] for n in weights}, ckpt_prefix)
    for name, m in mapping.items():
        m.variable.assign(values[name].reshape(m.variable.shape))
    unknown_slots = sorted(set(slots) - set(mapping))
    if unknown_slots:
        raise ValueError(f"{ckpt_prefix}: Adam slots for variables not in the model: "
                         f"{', '.join(unknown_slots)}")
    return OriginalCheckpoint(config, models.generator, models.discriminator, models.encoder,
                              global_step, slots, ignored)


def _split(values):
    """Partitions checkpoint entries into weights, Adam slots, ignored names and the step."""
    weights, slots, ignored, global_step = {}, {}, [], None
    for name, value in values.items():
        if name == "global_step":
            global_step = int(value)
        elif any(p.search(name) for p in _IGNORED):  # fine-tuning heads and their slots
            ignored.append(name)
        elif name.endswith(_SLOT_SUFFIXES):
            var, slot = name.rsplit("/", 1)
            slots.setdefault(var, {})[slot] = value
        else:
            weights[name] = value
    return weights, slots, sorted(ignored), global_step


def _check_match(mapping, shapes, source):
    expected = {name: m.original_shape for name, m in mapping.items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    mismatched = sorted(n for n in set(expected) & set(shapes)
                        if tuple(shapes[n]) != expected[n])
    problems = []
    if missing:
        problems.append("missing from the checkpoint: " + ", ".join(
            f"{n} {list(expected[n])}" for n in missing))
    if unexpected:
        problems.append("in the checkpoint but not in the model: " + ", ".join(
            f"{n} {list(shapes[n])}" for n in unexpected))
    if mismatched:
        problems.append("shape mismatch (checkpoint vs config): " + ", ".join(
            f"{n} {list(shapes[n])} vs {list(expected[n])}" for n in mismatched))
    if problems:
        raise ValueError(f"{source}: checkpoint does not match the config:\n  "
                         + "\n  ".join(problems))


def save_original(models, ckpt_prefix, global_step=None, optimizer_slots=None):
    """Writes our models as a TF1-layout checkpoint with exactly the original's names.

    Args:
        models: `models.ElectraModels`.
        ckpt_prefix: output prefix, e.g. `out/model.ckpt`; it must not exist yet.
        global_step: written as the int64 `global_step` when given.
        optimizer_slots: {original name: {"adam_m": array, "adam_v": array}} to write too.
    Returns:
        The prefix written.
    """
    return save_mapped(variable_map(models), ckpt_prefix, global_step, optimizer_slots)


def save_mapped(mapping, ckpt_prefix, global_step=None, optimizer_slots=None):
    """`save_original` for any {original name: `Mapped`} (e.g. a fine-tuning model's
    `original_variables()`, heads under `task_specific/` included)."""
    tensors = {name: np.asarray(m.variable.numpy()).reshape(m.original_shape)
               for name, m in mapping.items()}
    state = _state_tensors(global_step, optimizer_slots)
    orphans = sorted({n.rsplit("/", 1)[0] for n in state if n != "global_step"} - set(tensors))
    if orphans:
        raise ValueError(f"optimizer slots for variables the model does not have: "
                         f"{', '.join(orphans)}")
    tensors.update(state)
    if tf.io.gfile.exists(ckpt_prefix + ".index"):
        raise FileExistsError(f"{ckpt_prefix}: a checkpoint with this prefix exists already")
    # Data files without their index are what a writer killed between its renames left (the
    # index is always renamed last): not a checkpoint, so they are replaced.
    for stale in tf.io.gfile.glob(ckpt_prefix + ".data-*"):
        files.remove(stale)
    write_tensors(ckpt_prefix, tensors)
    _point_state_file_at(ckpt_prefix)
    return ckpt_prefix


def _point_state_file_at(ckpt_prefix):
    """Makes the directory's `checkpoint` state file (a `CheckpointState` text proto)
    name `ckpt_prefix` as the latest, keeping the earlier entries."""
    out_dir = os.path.dirname(ckpt_prefix) or "."
    state = tf.train.get_checkpoint_state(out_dir)
    names = [os.path.basename(p) for p in (state.all_model_checkpoint_paths if state else [])]
    names = list(dict.fromkeys(names + [os.path.basename(ckpt_prefix)]))
    files.write_text(os.path.join(out_dir, "checkpoint"),
                     f'model_checkpoint_path: "{names[-1]}"\n'
                     + "".join(f'all_model_checkpoint_paths: "{n}"\n' for n in names))


def _state_tensors(global_step, optimizer_slots):
    tensors = {f"{var}/{slot}": np.asarray(value)
               for var, slots in (optimizer_slots or {}).items() for slot, value in slots.items()}
    if global_step is not None:
        tensors["global_step"] = np.asarray(global_step, np.int64)
    return tensors


def write_tensors(prefix, tensors):
    """Writes name -> array as a V2 checkpoint with exactly these names (what TF1 reads).

    Written beside the target and moved into place data first, index last: an index
    under the final name always has its data, and a failure leaves nothing behind.
    """
    tmp = files.temporary_path(prefix)
    try:
        files.makedirs(tmp)
        names = sorted(tensors)
        tmp_prefix = os.path.join(tmp, "ckpt")
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names,
                          shape_and_slices=[""] * len(names),
                          tensors=[tensors[n] for n in names])
        for path in sorted(tf.io.gfile.glob(tmp_prefix + ".data-*")) + [tmp_prefix + ".index"]:
            files.commit(path, prefix + path[len(tmp_prefix):])
    finally:
        files.remove(tmp)
