"""Checkpoints: the one name table, original TF1 checkpoints, our model directories.

- `names`: original name ⇄ our variable (`variable_map`, `Mapped`).
- `original`: read and write original TF1 checkpoints (`load_original`, `save_original`).
- `model_dir`: our model directory (config, TF2 checkpoints) and conversion both ways.
"""

from electra_tf.checkpoints.model_dir import (
    CONFIG_FILE, build_from_model_dir, checkpoint_objects, checkpoint_steps, config_for_dir,
    convert_from_original, convert_to_original, latest_readable, load_model_dir,
    read_components, read_weights, save_model_dir, unreadable, write_model_dir_files)
from electra_tf.checkpoints.names import Mapped, encoder_variable_map, variable_map
from electra_tf.checkpoints.original import (
    OriginalCheckpoint, infer_config, infer_hparams, load_original, read_checkpoint,
    resolve_checkpoint, save_mapped, save_original, write_tensors)

__all__ = ["CONFIG_FILE", "Mapped", "OriginalCheckpoint", "build_from_model_dir",
           "checkpoint_objects", "checkpoint_steps", "config_for_dir", "convert_from_original",
           "convert_to_original", "encoder_variable_map", "infer_config", "infer_hparams",
           "latest_readable", "load_model_dir", "load_original", "read_checkpoint",
           "read_components",
           "read_weights", "resolve_checkpoint", "save_mapped", "save_model_dir",
           "save_original", "unreadable", "variable_map", "write_model_dir_files",
           "write_tensors"]
