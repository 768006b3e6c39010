"""Loads an export the way a server does and calls it: TensorFlow and tensorflow-text only.

    python export_check.py EXPORT_DIR REQUESTS_JSON OUTPUT_NPZ

REQUESTS_JSON is `[{"signature": name, "inputs": {input: nested list}}, ...]` (ints become
int32 tensors, strings string tensors). OUTPUT_NPZ gets `<i>/<output>` for each call (string
outputs as unicode arrays, so no pickling), `warmup_signatures` (the signature of each
warm-up record, each replayed against the loaded model) and `modules` (the top-level
packages imported, to prove that nothing of this project was).

`prediction_log_class()` builds the `tensorflow.serving.PredictionLog` message (the fields
a warm-up record uses, with TF Serving's field numbers) from a descriptor, because the
`tensorflow_serving` package is not installed.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402  (registers the tokenizer ops before loading)
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")

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


def op_types(export_dir):
    """Sorted op types of a SavedModel's graph, its function library included."""
    from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    ops = set()
    for meta_graph in saved_model.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(ops)


def prediction_log_class():
    """`tensorflow.serving.PredictionLog` (predict_log only) as a protobuf message class."""
    file = descriptor_pb2.FileDescriptorProto(
        name="electra_test/prediction_log.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["tensorflow/core/framework/tensor.proto"])
    string, message = (descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                       descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE)
    optional, repeated = (descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                          descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)

    def add(msg, name, number, kind, type_name=None, label=optional):
        msg.field.add(name=name, number=number, type=kind, label=label, type_name=type_name)

    spec = file.message_type.add(name="ModelSpec")
    add(spec, "name", 1, string)
    add(spec, "signature_name", 3, string)
    request = file.message_type.add(name="PredictRequest")
    add(request, "model_spec", 1, message, ".tensorflow.serving.ModelSpec")
    entry = request.nested_type.add(name="InputsEntry")
    entry.options.map_entry = True
    add(entry, "key", 1, string)
    add(entry, "value", 2, message, ".tensorflow.TensorProto")
    add(request, "inputs", 2, message, ".tensorflow.serving.PredictRequest.InputsEntry",
        repeated)
    log = file.message_type.add(name="PredictLog")
    add(log, "request", 1, message, ".tensorflow.serving.PredictRequest")
    prediction_log = file.message_type.add(name="PredictionLog")
    add(prediction_log, "predict_log", 6, message, ".tensorflow.serving.PredictLog")
    pool = descriptor_pool.DescriptorPool()
    for serialized in tensor_descriptor_bytes():
        pool.AddSerializedFile(serialized)
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.PredictionLog"))


def tensor_descriptor_bytes():
    """`tensor.proto` and its imports, serialized in dependency order (for a fresh pool)."""
    from tensorflow.core.framework import tensor_pb2  # noqa: PLC0415
    ordered, seen = [], set()

    def visit(file):
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            visit(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        ordered.append(proto.SerializeToString())

    visit(tensor_pb2.DESCRIPTOR)
    return ordered


def read_warmup(export_dir):
    """The warm-up records as `[(signature_name, {input: ndarray})]`."""
    log_class = prediction_log_class()
    requests = []
    for record in tf.data.TFRecordDataset(os.path.join(export_dir, WARMUP_FILE)):
        log = log_class.FromString(record.numpy())
        request = log.predict_log.request
        requests.append((request.model_spec.signature_name,
                         {k: tf.make_ndarray(v) for k, v in request.inputs.items()}))
    return requests


def to_tensor(value):
    """A JSON value as a tensor: int32 for integers, else strings (UTF-8)."""
    if np.array(value).dtype.kind in "iu":
        return tf.constant(value, tf.int32)
    return tf.constant(value, tf.string)


def to_numpy(tensor):
    value = tensor.numpy()
    if value.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[str])(value) if value.size \
            else value.astype(str)
    return value


def main(export_dir, requests_json, output_npz):
    loaded = tf.saved_model.load(export_dir)
    with open(requests_json) as f:
        calls = json.load(f)
    results = {}
    for i, call in enumerate(calls):
        function = loaded.signatures[call["signature"]]
        outputs = function(**{k: to_tensor(v) for k, v in call["inputs"].items()})
        results.update({f"{i}/{k}": to_numpy(v) for k, v in outputs.items()})
    warmup = read_warmup(export_dir)
    for signature, inputs in warmup:
        loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    results["warmup_signatures"] = np.array([s for s, _ in warmup])
    results["modules"] = np.array(sorted({m.split(".")[0] for m in sys.modules}))
    results["versions"] = np.array([tf.__version__, tensorflow_text.__version__])
    np.savez(output_npz, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])
