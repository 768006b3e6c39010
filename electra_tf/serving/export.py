"""Exports a model directory as a versioned SavedModel for TensorFlow Serving.

The export is `<export_base>/<version>/`, the layout TF Serving watches with
`--model_base_path=<export_base>`: one SavedModel holding every network of the directory as
its own signatures, so shared weights are stored once and one model name serves them all.
It is written beside its final name and renamed at the end (TF Serving only loads
integer-named directories, so it never sees a half-written version); an existing version is
never overwritten.

Which endpoints a directory gets is decided by the directory itself: a pretraining model
directory (`config.json`) is served here (discriminator or encoder, and the generator); a
directory written by a higher layer names, in `serving.json`, the entry point (group
`electra_tf.serving`, declared in the package metadata) that builds its `ServingModule`, so
this core never imports the layers above it.
"""

import importlib.metadata
import os
import re

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from electra_common import files
from electra_tf import checkpoints
from electra_tf.serving.endpoints import (
    discriminator_endpoint, encoder_endpoint, generator_endpoint, score_endpoint)
from electra_tf.serving.module import PREDICT_METHOD, ServingModule
from electra_tf.serving.text_encoder import TextEncoder
from electra_tf.serving.warmup import WARMUP_FILE, write_warmup_requests

# A model directory built by another layer says which serving builder it needs.
SERVING_FILE = "serving.json"
ENTRY_POINT_GROUP = "electra_tf.serving"


def find_vocab(model_dir, config):
    """The vocabulary of a pretraining run: `DIR/vocab.txt`, else `<data-dir>/vocab.txt`.

    `<data-dir>` is DIR's grandparent when DIR is `<data-dir>/models/<name>`, else the
    `data_dir` recorded in `config.json`.
    """
    model_dir = os.path.abspath(model_dir)
    candidates = [os.path.join(model_dir, "vocab.txt")]
    if os.path.basename(os.path.dirname(model_dir)) == "models":
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(model_dir)),
                                       "vocab.txt"))
    candidates.append(config.vocab_file)
    for path in candidates:
        if files.exists(path):
            return path
    raise FileNotFoundError(f"{model_dir}: no vocabulary found (looked for "
                            f"{', '.join(candidates)}); pass --vocab-file")


def next_version(export_base):
    """1 + the largest integer-named directory in `export_base` (1 if none)."""
    if not tf.io.gfile.isdir(export_base):
        return 1
    versions = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(export_base)
                if re.fullmatch(r"\d+/?", name)]
    return max(versions, default=0) + 1


def pretrained_module(model_dir, vocab_file=None, top_k=10, strip_accents=True):
    """The `ServingModule` of a pretraining model directory.

    Args:
        model_dir: `config.json` + checkpoints (from pretraining or conversion).
        vocab_file: default `find_vocab(model_dir, config)`.
        top_k: generator predictions per [MASK] position.
        strip_accents: as `FullTokenizer` (the original strips accents when lower-casing).
    Returns:
        A `ServingModule` of `pretrained_endpoints`.
    """
    loaded = checkpoints.load_model_dir(model_dir)
    config = loaded.config
    vocab_file = vocab_file or find_vocab(model_dir, config)
    text_encoder = TextEncoder(vocab_file, config.max_seq_length, config.do_lower_case,
                               strip_accents, config.vocab_size)
    return ServingModule(text_encoder, pretrained_endpoints(loaded, text_encoder, top_k))


def pretrained_endpoints(loaded, text_encoder, top_k=10):
    """The endpoints of loaded pretraining models (`checkpoints.OriginalCheckpoint`): the
    discriminator (or, without a discriminator head, the encoder), Electric's `score`
    when the model was trained with the Electric objective, then the generator."""
    endpoints = []
    if loaded.discriminator is not None:
        endpoints.append(discriminator_endpoint(loaded.discriminator, text_encoder))
        if loaded.config.electric_objective:
            endpoints.append(score_endpoint(loaded.discriminator, text_encoder))
    elif loaded.generator is None:
        endpoints.append(encoder_endpoint(loaded.encoder, text_encoder))
    if loaded.generator is not None:
        endpoints.append(generator_endpoint(loaded.generator, text_encoder, top_k))
    return endpoints


def load_module(model_dir, vocab_file=None, top_k=10):
    """The `ServingModule` of any model directory (see the module docstring)."""
    serving_file = os.path.join(model_dir, SERVING_FILE)
    if files.exists(serving_file):
        name = files.read_json(serving_file).get("entry_point")
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=str(name))
        if not found:
            raise ValueError(f"{serving_file}: names the serving builder {name!r}, which no "
                             f"installed package registers (entry point group "
                             f"{ENTRY_POINT_GROUP}); install electra-tf with pip install -e .")
        return next(iter(found)).load()(model_dir, vocab_file=vocab_file)
    if not files.exists(os.path.join(model_dir, checkpoints.CONFIG_FILE)):
        raise FileNotFoundError(f"{model_dir}: not a model directory (no "
                                f"{checkpoints.CONFIG_FILE} or {SERVING_FILE})")
    return pretrained_module(model_dir, vocab_file, top_k)


def mark_method_names(export_dir, method_names):
    """Gives signatures their SignatureDef method names (the Classify / Regress ones).

    TF2 cannot: `tf.saved_model.save` writes every signature with the predict method name
    (`tensorflow/python/saved_model/save.py`, `_generate_signatures`), and no option
    changes it. TF Serving only checks method names when started with
    `--enable_signature_method_name_check` (off by default, for TF2 models), but then its
    Classify / Regress APIs need them; `saved_model_cli show` shows them. So they are set
    in `saved_model.pb` after saving, and the fingerprint (a hash of that file) rewritten.

    Args:
        export_dir: a SavedModel directory.
        method_names: {signature name: method name}; predict ones are left as saved.
    """
    changes = {k: v for k, v in method_names.items() if v != PREDICT_METHOD}
    if not changes:
        return
    path = os.path.join(export_dir, "saved_model.pb")
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model = saved_model_pb2.SavedModel.FromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for name, method in changes.items():
            meta_graph.signature_def[name].method_name = method
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())
    write_fingerprint(export_dir)


def write_fingerprint(export_dir):
    """Rewrites `fingerprint.pb` for the directory's `saved_model.pb`, as
    `tf.saved_model.save` writes it.

    The one private TensorFlow API the export uses (no public one writes a fingerprint);
    `tests/electra_tf/serving/test_export.py` checks it against the public reader.
    """
    from tensorflow.python.saved_model import fingerprinting_utils  # noqa: PLC0415

    fingerprinting_utils.write_fingerprint(export_dir)


def export_saved_model(model_dir, export_base, version=None, vocab_file=None, top_k=10):
    """Writes `export_base/<version>/`, a SavedModel of the model directory for TF Serving.

    Args:
        model_dir: a pretraining model directory (`config.json` + checkpoints) or one that
            names its serving builder (a fine-tuned model directory).
        export_base: the directory TF Serving watches (`--model_base_path`).
        version: a positive integer; default 1 + the largest existing version.
        vocab_file: default: the model directory's own vocabulary.
        top_k: generator predictions per [MASK] position.
    Returns:
        The version directory written.
    Raises:
        FileExistsError: the version exists already.
        FileNotFoundError: no model directory or vocabulary.
        ValueError: a bad version or a vocabulary of the wrong size.
    """
    version = next_version(export_base) if version is None else version
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    target = os.path.join(export_base, str(version))
    if files.exists(target):
        raise FileExistsError(f"{target}: version {version} exists already; choose another "
                              f"--version or leave it out to use {next_version(export_base)}")
    module = load_module(model_dir, vocab_file, top_k)
    files.remove_leftovers(export_base)  # versions a killed export left half written
    with files.atomic_path(target) as tmp:
        tf.saved_model.save(module, tmp, signatures=module.signatures)
        mark_method_names(tmp, module.method_names)
        write_warmup_requests(os.path.join(tmp, WARMUP_FILE), module)
    return target
