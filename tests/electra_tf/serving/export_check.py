"""Loads an export the way a server does and calls it: TensorFlow, tensorflow-text and the
serving-api protos only.

    python export_check.py EXPORT_DIR REQUESTS_JSON OUTPUT_NPZ

REQUESTS_JSON is `[{"signature": name, "inputs": {input: nested list}}, ...]` (ints become
int32 tensors, strings string tensors, `{"examples": [{feature: text}]}` serialized
tf.Examples). OUTPUT_NPZ gets `<i>/<output>` for each call (string
outputs as unicode arrays, so no pickling), `warmup_signatures` (the signature of each
warm-up record, each replayed against the loaded model) and `modules` (the top-level
packages imported, to prove that nothing of this project was).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402  (registers the tokenizer ops before loading)
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402

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


def read_warmup(export_dir):
    """The warm-up records as `[(signature_name, {input: ndarray})]`: a Predict request's
    tensors, a Classify / Regress request's examples serialized as `inputs` (how the server
    feeds them: `tensorflow_serving/servables/tensorflow/util.cc`)."""
    requests = []
    for record in tf.data.TFRecordDataset(os.path.join(export_dir, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        kind = log.WhichOneof("log_type")
        request = getattr(log, kind).request
        if kind == "predict_log":
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        else:
            examples = request.input.example_list.examples
            inputs = {"inputs": np.array([e.SerializeToString() for e in examples], object)}
        requests.append((request.model_spec.signature_name, inputs))
    return requests


def to_tensor(value):
    """A JSON value as a tensor: int32 for integers, else strings (UTF-8); `{"examples":
    [{feature: text}, ...]}` becomes those serialized `tf.train.Example`s."""
    if isinstance(value, dict):
        return tf.constant([tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
            for k, v in example.items()})).SerializeToString()
            for example in value["examples"]], tf.string)
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
