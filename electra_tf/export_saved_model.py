"""Exports a model directory as a versioned SavedModel for TensorFlow Serving.

    python -m electra_tf.export_saved_model --model-dir DIR --output EXPORT_BASE [--version N]

DIR is a pretraining model directory (`<data-dir>/models/<name>`, from `run_pretraining`
or `convert_checkpoint`) or a fine-tuned model directory (a trial's
`.../finetuning_models/<tasks>_model_<trial>`, from `finetune.run_finetuning`; recognised
by its `finetuning_config.json`). The export is `EXPORT_BASE/<version>/`, the layout TF
Serving watches with `--model_base_path=EXPORT_BASE`: one SavedModel holding every network
of the directory as its own signatures (see `serving.py`), so shared weights are stored
once and one model name serves them all. A pretraining directory gives:

| signature | inputs | outputs |
|---|---|---|
| `serving_default`, `discriminator_text` | `text` | features + `tokens` + discriminator outputs |
| `discriminator_pair` | `text_a`, `text_b` | the same, for `[CLS] a [SEP] b [SEP]` |
| `discriminator_ids` | `input_ids`, `input_mask`, `segment_ids` | discriminator outputs |
| `generator_text` | `text` with literal "[MASK]"s | features + `tokens` + generator outputs |
| `generator_ids` | `input_ids`, `input_mask`, `segment_ids` | generator outputs |

A fine-tuned directory gives `<task>_text` and `<task>_ids` per task (`serving_default` =
the first task's `<task>_text`); `serving_tasks.task_endpoint` lists each task type's outputs.

The version is written to a hidden sibling directory and renamed at the end: TF Serving
only loads integer-named directories, so it never sees a half-written version. An existing
version is never overwritten.
"""

import os
import re
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from absl import app, flags

from electra_tf import checkpoints, cli, serving, serving_tasks
from pretrain_data import tokenization

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# One request per signature: a list of texts per input (`serving.TEXT_INPUTS` order).
WARMUP_TEXTS = {"single": (["The quick brown fox jumps over the lazy dog."],),
                "pair": (["The quick brown fox."], ["It jumps over the lazy dog."]),
                "masked": (["The quick brown [MASK] jumps over the lazy dog."],),
                "words": (["The quick brown fox jumps over the lazy dog ."],),
                "qa": (["Who jumps over the dog?"],
                       ["The quick brown fox jumps over the lazy dog."])}
# A fine-tuned model directory holds this file (`finetune.model_dir.CONFIG_FILE`).
FINETUNING_CONFIG_FILE = "finetuning_config.json"

# The tensorflow-text ops our raw-text signatures use, all registered by TF Serving's
# standard `tensorflow_model_server`. Evidence: tensorflow/serving
# `tensorflow_serving/model_servers/BUILD` links SUPPORTED_TENSORFLOW_OPS =
# ["@org_tensorflow_text//tensorflow_text:ops_lib", ...] into `server_lib`, and
# tensorflow/text `tensorflow_text/BUILD` `ops_lib` depends on
# `fast_wordpiece_tokenizer_cc` (FastWordpieceTokenizeWithOffsets), `normalize_ops_cc`
# (NormalizeUTF8) and `regex_split_ops_cc` (RegexSplitWithOffsets). Every other op of the
# graph is a TensorFlow core op (listed in `tf.raw_ops`).
TF_TEXT_SERVING_OPS = ("FastWordpieceTokenizeWithOffsets", "NormalizeUTF8",
                       "RegexSplitWithOffsets")


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
        if tf.io.gfile.exists(path):
            return path
    raise FileNotFoundError(f"{model_dir}: no vocabulary found (looked for "
                            f"{', '.join(candidates)}); pass --vocab-file")


def check_vocab_size(vocab_file, config):
    """A vocabulary must have exactly the model's `vocab_size` tokens."""
    size = len(tokenization.load_vocab(vocab_file))
    if size != config.vocab_size:
        raise ValueError(f"{vocab_file} has {size} tokens but the model's vocab_size is "
                         f"{config.vocab_size}: not the vocabulary this model was trained with")


def next_version(export_base):
    """1 + the largest integer-named directory in `export_base` (1 if none)."""
    if not tf.io.gfile.isdir(export_base):
        return 1
    versions = [int(name.rstrip("/")) for name in tf.io.gfile.listdir(export_base)
                if re.fullmatch(r"\d+/?", name)]
    return max(versions, default=0) + 1


def build_serving_module(loaded, vocab_file, top_k=10, do_lower_case=None,
                         strip_accents=True):
    """The `ServingModule` of a loaded pretraining model directory.

    Args:
        loaded: `checkpoints.OriginalCheckpoint` (from `load_model_dir`).
        vocab_file: the vocabulary of training.
        top_k: generator predictions per [MASK] position.
        do_lower_case: default: the config's `do_lower_case`.
        strip_accents: as `FullTokenizer` (the original strips accents when lower-casing).
    Returns:
        `serving.ServingModule`: the discriminator (or, without a discriminator head, the
        encoder) first, then the generator when there is one.
    """
    config = loaded.config
    do_lower_case = config.do_lower_case if do_lower_case is None else do_lower_case
    text_encoder = serving.TextEncoder(vocab_file, config.max_seq_length, do_lower_case,
                                       strip_accents)
    endpoints = []
    if loaded.discriminator is not None:
        endpoints.append(serving.discriminator_endpoint(loaded.discriminator))
    elif loaded.generator is None:
        endpoints.append(serving.encoder_endpoint(loaded.encoder))
    if loaded.generator is not None:
        endpoints.append(serving.generator_endpoint(
            loaded.generator, text_encoder.mask_id, top_k, text_encoder.tokens))
    return serving.ServingModule(text_encoder, endpoints)


def build_finetuned_module(finetuned, strip_accents=True):
    """The `ServingModule` of a loaded fine-tuned model directory: one endpoint per task.

    Args:
        finetuned: `finetune.model_dir.FinetunedModel` (config, tasks, model, vocab_file).
        strip_accents: as `FullTokenizer` (the original strips accents when lower-casing).
    Returns:
        `serving.ServingModule` with `<task>_text` and `<task>_ids` per task, in the
        config's task order.
    """
    config = finetuned.config
    text_encoder = serving.TextEncoder(finetuned.vocab_file, config.max_seq_length,
                                       config.do_lower_case, strip_accents)
    endpoints = [serving_tasks.task_endpoint(task, finetuned.model, text_encoder, config)
                 for task in finetuned.tasks]
    return serving.ServingModule(text_encoder, endpoints)


def is_finetuned_dir(model_dir):
    """Whether `model_dir` is a fine-tuned model directory (it has a fine-tuning config)."""
    return tf.io.gfile.exists(os.path.join(model_dir, FINETUNING_CONFIG_FILE))


def load_module(model_dir, vocab_file=None, top_k=10):
    """The `ServingModule` of a pretraining or fine-tuned model directory."""
    if is_finetuned_dir(model_dir):
        from finetune import model_dir as finetuned_dir  # noqa: PLC0415 (finetune needs us)
        finetuned = finetuned_dir.load(model_dir)
        if vocab_file:
            finetuned = finetuned._replace(vocab_file=vocab_file)
        check_vocab_size(finetuned.vocab_file, finetuned.config)
        return build_finetuned_module(finetuned)
    if not tf.io.gfile.exists(os.path.join(model_dir, checkpoints.CONFIG_FILE)):
        raise FileNotFoundError(f"{model_dir}: not a model directory (no "
                                f"{checkpoints.CONFIG_FILE} or {FINETUNING_CONFIG_FILE})")
    loaded = checkpoints.load_model_dir(model_dir)
    vocab_file = vocab_file or find_vocab(model_dir, loaded.config)
    check_vocab_size(vocab_file, loaded.config)
    return build_serving_module(loaded, vocab_file, top_k)


def export_saved_model(model_dir, export_base, version=None, vocab_file=None, top_k=10):
    """Writes `export_base/<version>/`, a SavedModel of the model directory for TF Serving.

    Args:
        model_dir: a pretraining model directory (`config.json` + checkpoints) or a
            fine-tuned one (`finetuning_config.json`, `vocab.txt`, `model.weights.h5`).
        export_base: the directory TF Serving watches (`--model_base_path`).
        version: a positive integer; default 1 + the largest existing version.
        vocab_file: default `find_vocab(model_dir, config)` (pretraining) or the fine-tuned
            directory's `vocab.txt`.
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
    if tf.io.gfile.exists(target):
        raise FileExistsError(f"{target}: version {version} exists already; choose another "
                              f"--version or leave it out to use {next_version(export_base)}")
    module = load_module(model_dir, vocab_file, top_k)
    tf.io.gfile.makedirs(export_base)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=export_base)
    try:
        tf.saved_model.save(module, tmp, signatures=module.signatures)
        write_warmup_requests(os.path.join(tmp, WARMUP_FILE), module)
        tf.io.gfile.rename(tmp, target, overwrite=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# ------------------------------------------------------------------ warm-up requests
# TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
# `tensorflow.serving.PredictionLog` protos) when it loads a version. The
# `tensorflow_serving` package is not a dependency, so the few messages needed are encoded
# here by hand; only length-delimited fields (wire type 2) occur:
#   PredictionLog { PredictLog predict_log = 6; }
#   PredictLog    { PredictRequest request = 1; }
#   PredictRequest{ ModelSpec model_spec = 1; map<string, TensorProto> inputs = 2; }
#     (a map entry is a message { string key = 1; TensorProto value = 2; })
#   ModelSpec     { string name = 1; string signature_name = 3; }
# (tensorflow_serving/apis/prediction_log.proto, predict.proto, model.proto.)


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number, payload):
    """One length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(signature_name, inputs, model_name="electra"):
    """A serialized `PredictionLog` holding one `PredictRequest`.

    Args:
        signature_name: the signature to call.
        inputs: {input name: NumPy array or list}.
        model_name: `model_spec.name` (TF Serving's warm-up ignores it).
    Returns:
        bytes.
    """
    spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
    entries = b"".join(
        _field(2, _field(1, name.encode())
               + _field(2, tf.make_tensor_proto(value).SerializeToString()))
        for name, value in sorted(inputs.items()))
    return _field(6, _field(1, _field(1, spec) + entries))


def _read_varint(data, pos):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos


def _fields(data):
    """[(field number, payload)] of a message made of length-delimited fields only."""
    fields, pos = [], 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        if key & 7 != 2:
            raise ValueError(f"field {key >> 3}: wire type {key & 7}, expected 2 "
                             f"(length-delimited)")
        size, pos = _read_varint(data, pos)
        fields.append((key >> 3, data[pos:pos + size]))
        pos += size
    return fields


def parse_prediction_log(record):
    """The inverse of `prediction_log`: `(signature_name, {input name: ndarray})`."""
    from tensorflow.core.framework import tensor_pb2  # noqa: PLC0415
    predict_log = dict(_fields(record))[6]
    request = dict(_fields(predict_log))[1]
    signature, inputs = "", {}
    for number, payload in _fields(request):
        if number == 1:  # model_spec
            signature = dict(_fields(payload)).get(3, b"").decode()
        elif number == 2:  # one entry of the inputs map
            entry = dict(_fields(payload))
            inputs[entry[1].decode()] = tf.make_ndarray(
                tensor_pb2.TensorProto.FromString(entry[2]))
    return signature, inputs


def read_warmup_requests(export_dir):
    """The warm-up records of an export as `[(signature_name, {input: ndarray})]`."""
    path = os.path.join(export_dir, WARMUP_FILE)
    return [parse_prediction_log(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def warmup_inputs(module):
    """{signature name: inputs} for one small request to each signature of `module`."""
    requests = {}
    for name, kind in module.input_kinds.items():
        if kind == "ids":
            features = module.text_encoder.encode(tf.constant(WARMUP_TEXTS["single"][0]))
            requests[name] = {k: v.numpy() for k, v in features.items()}
        else:
            requests[name] = {input_name: np.array(text, object) for input_name, text
                              in zip(serving.TEXT_INPUTS[kind], WARMUP_TEXTS[kind])}
    return requests


def write_warmup_requests(path, module):
    """Writes one `PredictionLog` per signature of `module` to the TFRecord `path`."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for name, inputs in warmup_inputs(module).items():
            writer.write(prediction_log(name, inputs))


# ------------------------------------------------------------------ op types


def op_types(export_dir):
    """Sorted op types of a SavedModel's graph, its function library included."""
    from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(ops)


def define_flags():
    """The command line's flags (defined only when run as a script, so that importing this
    module next to other command lines cannot clash on names such as --output)."""
    flags.DEFINE_string("model-dir", None, "Model directory: pretraining "
                        "(<data-dir>/models/<name>) or fine-tuned (a trial's "
                        "<tasks>_model_<trial>).")
    flags.DEFINE_string("output", None, "Export base directory: the version goes in "
                        "OUTPUT/<N>/.")
    flags.DEFINE_integer("version", None, "Version number; default: 1 + the largest "
                         "existing.")
    flags.DEFINE_string("vocab-file", None, "Vocabulary; default: DIR/vocab.txt, else "
                        "<data-dir>/vocab.txt.")
    flags.DEFINE_integer("top-k", 10, "Generator predictions per [MASK] position.")
    flags.mark_flags_as_required(["model-dir", "output"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    values = flags.FLAGS
    target = export_saved_model(values["model-dir"].value, values.output, values.version,
                                values["vocab-file"].value, values["top-k"].value)
    print(f"wrote {target}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
