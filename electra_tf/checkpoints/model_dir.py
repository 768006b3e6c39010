"""Our model directory: `config.json`, `components.json` and TF2 checkpoints `ckpt-<step>`.

The same layout the trainer writes and resumes from. A checkpoint holds the model weights
and the optimizer's slots keyed by their *original* variable names (so it depends neither
on Keras' internal object graph nor on the order of variables), the step, and, when written
by training, the data iterator and RNG state. `original/` holds the original TF1 layout of
the final step.
"""

import os

import tensorflow as tf

from electra_common import files
from electra_tf import optimization
from electra_tf.checkpoints.names import variable_map
from electra_tf.checkpoints.original import (
    OriginalCheckpoint, infer_hparams, load_original, resolve_checkpoint, save_original)
from electra_tf.config import PretrainingConfig
from electra_tf.hparams import parse_hparams
from electra_tf.models import build_models

CONFIG_FILE = "config.json"
COMPONENTS_FILE = "components.json"
# The layout of `ckpt-<step>`: 2 = weights and slots keyed by original names. Directories
# of earlier versions (Keras' object graph) cannot be read; their `original/` checkpoint can.
CHECKPOINT_FORMAT = 2


def checkpoint_objects(models, optimizer=None, **extra):
    """The `tf.train.Checkpoint` of a model directory; `extra` adds training state."""
    weights = {name: m.variable for name, m in variable_map(models).items()}
    parts = {"optimizer": optimizer} if optimizer is not None else {}
    return tf.train.Checkpoint(weights=weights, **parts, **extra)


def read_weights(models, path):
    """Reads every model weight of `models` from the checkpoint `path`, or raises.

    Raises:
        ValueError: the checkpoint lacks some of them (another model, or another version
            of electra-tf); nothing is half loaded silently.
    """
    weights = {name: m.variable for name, m in variable_map(models).items()}
    try:
        tf.train.Checkpoint(weights=weights).read(path).assert_existing_objects_matched(
        ).expect_partial()  # the rest of the checkpoint (optimizer, data) is read elsewhere
    except AssertionError:
        raise ValueError(f"{path}: does not hold this model's weights under their original "
                         "names (written for another configuration, or by an older "
                         "electra-tf); convert the directory's original/model.ckpt-<step> "
                         "with python -m electra_tf.convert_checkpoint") from None


def unreadable(path):
    """Why the checkpoint `path` cannot be read in full (truncated, corrupt), or None.

    Reads every tensor (each is checksummed): a truncated data file is only noticed when
    its bytes are read. Variant tensors (a data iterator's state) cannot be read alone.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype != tf.variant:
                reader.get_tensor(name)
    except (tf.errors.OpError, IndexError, ValueError) as e:
        return str(getattr(e, "message", e)).strip().splitlines()[0]
    return None


def checkpoint_steps(directory):
    """The steps of the checkpoints `directory`'s state file lists, oldest first."""
    state = tf.train.get_checkpoint_state(directory)
    if state is None:
        return []
    paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
    return sorted({int(p.rsplit("-", 1)[1]) for p in paths if p})


def latest_readable(directory, log=print):
    """The newest checkpoint of `directory` that reads in full, or None if it has none.

    A damaged newer checkpoint (a disk that filled up, a copy cut short) is skipped with a
    warning naming it; training then writes it again.
    Raises:
        ValueError: every checkpoint the state file lists is damaged.
    """
    state = tf.train.get_checkpoint_state(directory)
    if state is None or not state.model_checkpoint_path:
        return None
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path not in paths:
        paths.append(state.model_checkpoint_path)
    damaged = []
    for path in reversed(paths):  # get_checkpoint_state has joined them to `directory`
        problem = unreadable(path)
        if problem is None:
            return path
        log(f"Warning: checkpoint {path} cannot be read ({problem}); using the one before it")
        damaged.append(path)
    raise ValueError(f"{directory}: no checkpoint can be read ({', '.join(damaged)} are "
                     "damaged); restore them from a copy, or start a new model directory")


def write_model_dir_files(config, models, directory):
    """Writes `config.json` and `components.json` (which networks exist, the format)."""
    config.save(os.path.join(directory, CONFIG_FILE))
    files.write_json(os.path.join(directory, COMPONENTS_FILE),
                     {"generator": models.generator is not None,
                      "discriminator_head": models.discriminator is not None,
                      "checkpoint_format": CHECKPOINT_FORMAT})


def read_components(model_dir):
    """`components.json` of a model directory: which networks it has.

    Raises:
        ValueError: the directory's checkpoints are in another format.
    """
    path = os.path.join(model_dir, COMPONENTS_FILE)
    components = files.read_json(path)
    found = components.pop("checkpoint_format", 1)
    if found != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {found}, this electra-tf reads format "
                         f"{CHECKPOINT_FORMAT}; convert the directory's "
                         "original/model.ckpt-<step> with python -m "
                         "electra_tf.convert_checkpoint --from-original")
    return components


def build_from_model_dir(model_dir):
    """The config and freshly built models described by a model directory."""
    config = PretrainingConfig.load(os.path.join(model_dir, CONFIG_FILE))
    return config, build_models(config, **read_components(model_dir))


def config_for_dir(model_dir, hparams=None):
    """A `PretrainingConfig` whose model directory is `model_dir`.

    `model_dir` is read as `<data_dir>/models/<name>` when it has that shape.
    """
    model_dir = os.path.abspath(model_dir)
    parent = os.path.dirname(model_dir)
    data_dir = os.path.dirname(parent) if os.path.basename(parent) == "models" else parent
    hparams = dict(parse_hparams(hparams), model_dir=model_dir)
    return PretrainingConfig(os.path.basename(model_dir), data_dir, **hparams)


def save_model_dir(models, model_dir, global_step=None, optimizer_slots=None):
    """Writes a new model directory that training can resume from.

    Args:
        models: `models.ElectraModels`.
        model_dir: a directory that does not exist yet or is empty.
        global_step, optimizer_slots: as `OriginalCheckpoint`; with slots, the optimizer
            state is saved too, so pretraining continues exactly where the original stopped.
    Returns:
        `model_dir`.
    """
    if files.exists(model_dir) and tf.io.gfile.listdir(model_dir):
        raise FileExistsError(f"{model_dir}: exists and is not empty; choose a new directory")
    optimizer = None
    if optimizer_slots:
        optimizer = optimization.pretraining_optimizer(models.config, variable_map(models))
        optimizer.load_original_state(optimizer_slots, global_step)
    files.remove(model_dir)  # empty, checked above
    with files.atomic_path(model_dir) as tmp:
        write_model_dir_files(models.config, models, tmp)
        tf.train.CheckpointManager(checkpoint_objects(models, optimizer), tmp, max_to_keep=None,
                                   checkpoint_name="ckpt").save(checkpoint_number=global_step or 0)
    return model_dir


def load_model_dir(model_dir):
    """Reads the latest checkpoint of a model directory (converted or trained).

    Returns:
        `OriginalCheckpoint`; `global_step` and `optimizer_slots` come from the saved
        optimizer, if the checkpoint has one.
    """
    config, models = build_from_model_dir(model_dir)
    latest = tf.train.latest_checkpoint(model_dir)
    if latest is None:
        raise FileNotFoundError(f"{model_dir}: no checkpoint (no 'checkpoint' state file)")
    optimizer = None
    if any(name.startswith("optimizer/") for name, _ in tf.train.list_variables(latest)):
        names = variable_map(models)
        optimizer = optimization.pretraining_optimizer(config, names)
        optimizer.build([m.variable for m in names.values()])
    read_weights(models, latest)
    checkpoint_objects(models, optimizer).read(latest).expect_partial()
    global_step, slots = optimizer.original_state() if optimizer else (None, {})
    return OriginalCheckpoint(config, models.generator, models.discriminator, models.encoder,
                              global_step, slots, [])


def convert_from_original(ckpt_prefix, output_dir, config=None):
    """Original TF1 checkpoint -> our model directory. Returns the `OriginalCheckpoint`.

    Args:
        ckpt_prefix: the original checkpoint (a prefix, or a directory holding one).
        output_dir: the new model directory (`<data_dir>/models/<name>` gives the config's
            name and data directory).
        config: a `PretrainingConfig`; default: inferred from the checkpoint's shapes.
    """
    if config is None:
        shapes = dict(tf.train.list_variables(resolve_checkpoint(ckpt_prefix)))
        config = config_for_dir(output_dir, infer_hparams(shapes))
    loaded = load_original(ckpt_prefix, config)
    save_model_dir(loaded.models, output_dir, loaded.global_step, loaded.optimizer_slots)
    return loaded


def convert_to_original(model_dir, ckpt_prefix):
    """Our model directory -> original TF1 checkpoint. Returns the prefix written."""
    loaded = load_model_dir(model_dir)
    return save_original(loaded.models, ckpt_prefix, loaded.global_step,
                         loaded.optimizer_slots)
