"""Conversion between the original TF1 checkpoints and our models, both ways, losslessly.

The one table of names is `_TABLE` below: for each part of the original graph (a variable
scope), the original variable names relative to that scope and where each lives on our
objects. Keras' multi-head attention keeps per-head kernels ([H, heads, H/heads]); the
original keeps [H, H] with heads as contiguous column blocks, so the two differ by a reshape
only and conversion is bit-exact.
"""

import dataclasses
import functools
import json
import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from electra_tf import config as config_lib
from electra_tf import modeling

# How an original shape follows from ours.
_MERGE_LAST = lambda s: s[:-2] + (s[-2] * s[-1],)  # noqa: E731
_MERGE_FIRST = lambda s: (s[0] * s[1],) + s[2:]  # noqa: E731

# Original name (relative to its scope) -> attribute path on our object [, shape rule].
_EMBEDDINGS = (
    ("word_embeddings", "word_embeddings.embeddings"),
    ("token_type_embeddings", "token_type_embeddings.embeddings"),
    ("position_embeddings", "position_embeddings.position_embeddings"),
    ("LayerNorm/beta", "layer_norm.beta"),
    ("LayerNorm/gamma", "layer_norm.gamma"),
)
_PROJECTION = (
    ("embeddings_project/kernel", "embeddings_project.kernel"),
    ("embeddings_project/bias", "embeddings_project.bias"),
)
_LAYER = (
    # [H, heads, H/heads] and [heads, H/heads] <- [H, H] and [H]: merge the head axes.
    ("attention/self/query/kernel", "attention.query_dense.kernel", _MERGE_LAST),
    ("attention/self/query/bias", "attention.query_dense.bias", _MERGE_LAST),
    ("attention/self/key/kernel", "attention.key_dense.kernel", _MERGE_LAST),
    ("attention/self/key/bias", "attention.key_dense.bias", _MERGE_LAST),
    ("attention/self/value/kernel", "attention.value_dense.kernel", _MERGE_LAST),
    ("attention/self/value/bias", "attention.value_dense.bias", _MERGE_LAST),
    # [heads, H/heads, H] <- [H, H]
    ("attention/output/dense/kernel", "attention.output_dense.kernel", _MERGE_FIRST),
    ("attention/output/dense/bias", "attention.output_dense.bias"),
    ("attention/output/LayerNorm/beta", "attention_layer_norm.beta"),
    ("attention/output/LayerNorm/gamma", "attention_layer_norm.gamma"),
    ("intermediate/dense/kernel", "intermediate_dense.kernel"),
    ("intermediate/dense/bias", "intermediate_dense.bias"),
    ("output/dense/kernel", "output_dense.kernel"),
    ("output/dense/bias", "output_dense.bias"),
    ("output/LayerNorm/beta", "output_layer_norm.beta"),
    ("output/LayerNorm/gamma", "output_layer_norm.gamma"),
)
# keras-hub's MaskedLMHead keeps its sublayers in private attributes.
_MLM_HEAD = (
    ("dense/kernel", "_intermediate_dense.kernel"),
    ("dense/bias", "_intermediate_dense.bias"),
    ("LayerNorm/beta", "_intermediate_layer_norm.beta"),
    ("LayerNorm/gamma", "_intermediate_layer_norm.gamma"),
    ("output_bias", "_bias"),
)
_DISC_HEAD = (
    ("dense/kernel", "dense.kernel"),
    ("dense/bias", "dense.bias"),
    ("dense_1/kernel", "dense_1.kernel"),
    ("dense_1/bias", "dense_1.bias"),
)
_TABLE = {"embeddings": _EMBEDDINGS, "projection": _PROJECTION, "layer": _LAYER,
          "mlm_head": _MLM_HEAD, "disc_head": _DISC_HEAD}

# Checkpoint entries that are not model weights. Adam slots are returned as optimizer
# state; `task_specific/*` (fine-tuning heads) belongs to the finetune package.
_SLOT_SUFFIXES = ("/adam_m", "/adam_v")
_IGNORED = (re.compile(r"^task_specific/"),)


@dataclasses.dataclass(frozen=True)
class Mapped:
    """One of our variables and the shape it has in the original."""

    variable: object
    original_shape: tuple


def variable_map(models):
    """Every model variable under its original name (spec §5).

    Args:
        models: `modeling.ElectraModels`.
    Returns:
        dict: original name -> `Mapped(variable, original_shape)`.
    """
    mapping = {}

    def add(scope, table, obj):
        for name, path, *rule in _TABLE[table]:
            variable = functools.reduce(getattr, path.split("."), obj)
            shape = tuple(variable.shape)
            mapping[f"{scope}/{name}"] = Mapped(variable, rule[0](shape) if rule else shape)

    def add_encoder(scope, encoder):
        own = encoder.embeddings is not models.encoder.embeddings or scope == "electra"
        if own:  # tied generators use `electra/embeddings/*` (caveat C3)
            add(f"{scope}/embeddings", "embeddings", encoder.embeddings)
        if encoder.embeddings_project is not None:
            add(scope, "projection", encoder)
        for i, layer in enumerate(encoder.transformer_layers):
            add(f"{scope}/encoder/layer_{i}", "layer", layer)

    add_encoder("electra", models.encoder)
    gen = models.generator
    if isinstance(gen, modeling.TwoTowerGenerator):
        add_encoder("generator_ltr", gen.ltr_encoder)
        add_encoder("generator_rtl", gen.rtl_encoder)
        add("cloze_predictions", "mlm_head", gen.head)
    elif gen is not None:
        if gen.encoder is not models.encoder:
            add_encoder("generator", gen.encoder)
        add("generator_predictions", "mlm_head", gen.head)
    if models.discriminator is not None:
        add("discriminator_predictions", "disc_head", models.discriminator.head)
    return mapping


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

    config: config_lib.PretrainingConfig
    generator: object
    discriminator: object
    encoder: object
    global_step: int | None
    optimizer_slots: dict
    ignored: list

    @property
    def models(self):
        return modeling.ElectraModels(self.config, self.generator, self.discriminator,
                                      self.encoder)


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

    The head count cannot be read from shapes; it is taken as max(1, H // 64), the
    original's own derivation (true for every released model). Pass a config otherwise.

    Args:
        shapes: dict original name -> shape.
    Returns:
        A `PretrainingConfig`.
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
    return config_lib.PretrainingConfig(model_name, data_dir, **hparams)


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
    models = modeling.build_models(
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
        models: `modeling.ElectraModels`.
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
    if tf.io.gfile.glob(ckpt_prefix + ".*"):
        raise FileExistsError(f"{ckpt_prefix}: a checkpoint with this prefix exists already")
    _save_tensors(ckpt_prefix, tensors)
    # Point the directory's `checkpoint` state file at it, keeping any earlier entries.
    out_dir = os.path.dirname(ckpt_prefix) or "."
    state = tf.train.get_checkpoint_state(out_dir)
    earlier = list(state.all_model_checkpoint_paths) if state else []
    tf.compat.v1.train.update_checkpoint_state(
        out_dir, os.path.basename(ckpt_prefix),
        earlier + [os.path.basename(ckpt_prefix)])
    return ckpt_prefix


def _state_tensors(global_step, optimizer_slots):
    tensors = {f"{var}/{slot}": np.asarray(value)
               for var, slots in (optimizer_slots or {}).items() for slot, value in slots.items()}
    if global_step is not None:
        tensors["global_step"] = np.asarray(global_step, np.int64)
    return tensors


def _save_tensors(prefix, tensors):
    """Writes name -> array as a V2 checkpoint with exactly these names (what TF1 reads)."""
    out_dir = os.path.dirname(prefix) or "."
    tf.io.gfile.makedirs(out_dir)
    # Write beside the target, then move into place: a failure leaves nothing behind.
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=out_dir)
    try:
        names = sorted(tensors)
        tmp_prefix = os.path.join(tmp, "ckpt")
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names,
                          shape_and_slices=[""] * len(names),
                          tensors=[tensors[n] for n in names])
        for path in tf.io.gfile.glob(tmp_prefix + ".*"):
            tf.io.gfile.rename(path, prefix + path[len(tmp_prefix):])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# Our own model directory: `config.json`, `components.json` and TF2 checkpoints `ckpt-<step>`
# (models, optimizer, and, when written by training, the data iterator and RNG state), the
# same layout the trainer writes and resumes from.
CONFIG_FILE = "config.json"
COMPONENTS_FILE = "components.json"


def checkpoint_objects(models, optimizer=None, **extra):
    """The `tf.train.Checkpoint` of a model directory; `extra` adds training state."""
    parts = {"encoder": models.encoder}
    if models.generator is not None:
        parts["generator"] = models.generator
    if models.discriminator is not None:
        parts["discriminator"] = models.discriminator
    if optimizer is not None:
        parts["optimizer"] = optimizer
    return tf.train.Checkpoint(**parts, **extra)


def write_model_dir_files(config, models, directory):
    """Writes `config.json` and `components.json` (which networks exist)."""
    config.save(os.path.join(directory, CONFIG_FILE))
    components = {"generator": models.generator is not None,
                  "discriminator_head": models.discriminator is not None}
    with tf.io.gfile.GFile(os.path.join(directory, COMPONENTS_FILE), "w") as f:
        f.write(json.dumps(components) + "\n")


def build_from_model_dir(model_dir):
    """The config and freshly built models described by a model directory."""
    config = config_lib.PretrainingConfig.load(os.path.join(model_dir, CONFIG_FILE))
    components = {"generator": True, "discriminator_head": True}
    if tf.io.gfile.exists(os.path.join(model_dir, COMPONENTS_FILE)):
        components = config_lib.read_json(os.path.join(model_dir, COMPONENTS_FILE))
    return config, modeling.build_models(config, **components)


def save_model_dir(models, model_dir, global_step=None, optimizer_slots=None):
    """Writes a new model directory that training can resume from.

    Args:
        models: `modeling.ElectraModels`.
        model_dir: a directory that does not exist yet or is empty.
        global_step, optimizer_slots: as `OriginalCheckpoint`; with slots, the optimizer
            state is saved too, so pretraining continues exactly where the original stopped.
    """
    from electra_tf import optimization  # noqa: PLC0415 (optimization imports this module)

    if tf.io.gfile.exists(model_dir) and tf.io.gfile.listdir(model_dir):
        raise FileExistsError(f"{model_dir}: exists and is not empty; choose a new directory")
    optimizer = None
    if optimizer_slots:
        optimizer = optimization.pretraining_optimizer(models.config, variable_map(models))
        optimization.load_original_state(optimizer, optimizer_slots, global_step)
    parent = os.path.dirname(os.path.abspath(model_dir))
    tf.io.gfile.makedirs(parent)
    # Build in a sibling temporary directory and rename: a failure leaves nothing behind.
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        write_model_dir_files(models.config, models, tmp)
        tf.train.CheckpointManager(checkpoint_objects(models, optimizer), tmp, max_to_keep=None,
                                   checkpoint_name="ckpt").save(checkpoint_number=global_step or 0)
        if tf.io.gfile.exists(model_dir):
            tf.io.gfile.rmtree(model_dir)  # empty, checked above
        tf.io.gfile.rename(tmp, model_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model_dir


def load_model_dir(model_dir):
    """Reads the latest checkpoint of a model directory (converted or trained).

    Returns:
        `OriginalCheckpoint`; `global_step` and `optimizer_slots` come from the saved
        optimizer, if the checkpoint has one.
    """
    from electra_tf import optimization  # noqa: PLC0415

    config, models = build_from_model_dir(model_dir)
    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None:
        raise FileNotFoundError(f"{model_dir}: no checkpoint (no 'checkpoint' state file)")
    optimizer = None
    if any(name.startswith("optimizer/") for name, _ in tf.train.list_variables(latest)):
        optimizer = optimization.pretraining_optimizer(config, variable_map(models))
        optimizer.build([m.variable for m in variable_map(models).values()])
    status = checkpoint_objects(models, optimizer).read(latest)
    status.expect_partial().assert_existing_objects_matched()
    global_step, slots = (optimization.export_original_state(optimizer) if optimizer
                          else (None, {}))
    return OriginalCheckpoint(config, models.generator, models.discriminator, models.encoder,
                              global_step, slots, [])


def convert_from_original(ckpt_prefix, output_dir, config=None):
    """Original TF1 checkpoint -> our model directory. Returns the `OriginalCheckpoint`."""
    loaded = load_original(ckpt_prefix, config)
    save_model_dir(loaded.models, output_dir, loaded.global_step, loaded.optimizer_slots)
    return loaded


def convert_to_original(model_dir, ckpt_prefix):
    """Our model directory -> original TF1 checkpoint. Returns the prefix written."""
    loaded = load_model_dir(model_dir)
    return save_original(loaded.models, ckpt_prefix, loaded.global_step,
                         loaded.optimizer_slots)
