"""Warm-up requests: what TF Serving replays when it loads a version.

`assets.extra/tf_serving_warmup_requests` is a TFRecord file of
`tensorflow.serving.PredictionLog` protos, one small request per signature. The
`tensorflow_serving` package is not a dependency, so the few messages needed are framed by
hand (`electra_common.protowire`); only length-delimited fields occur:
  PredictionLog { PredictLog predict_log = 6; }
  PredictLog    { PredictRequest request = 1; }
  PredictRequest{ ModelSpec model_spec = 1; map<string, TensorProto> inputs = 2; }
    (a map entry is a message { string key = 1; TensorProto value = 2; })
  ModelSpec     { string name = 1; string signature_name = 3; }
(tensorflow_serving/apis/prediction_log.proto, predict.proto, model.proto.)
"""

import os

import numpy as np
import tensorflow as tf

from electra_common.protowire import field

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# TensorFlow exports no `TensorProto` name; the class of the protos it makes is that class.
_TENSOR_PROTO = type(tf.make_tensor_proto(0))


def prediction_log(signature_name, inputs, model_name="electra"):
    """A serialized `PredictionLog` holding one `PredictRequest`.

    Args:
        signature_name: the signature to call.
        inputs: {input name: NumPy array or list}.
        model_name: `model_spec.name` (TF Serving's warm-up ignores it).
    Returns:
        bytes.
    """
    spec = field(1, model_name.encode()) + field(3, signature_name.encode())
    entries = b"".join(
        field(2, field(1, name.encode())
              + field(2, tf.make_tensor_proto(value).SerializeToString()))
        for name, value in sorted(inputs.items()))
    return field(6, field(1, field(1, spec) + entries))


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
    predict_log = dict(_fields(record))[6]
    request = dict(_fields(predict_log))[1]
    signature, inputs = "", {}
    for number, payload in _fields(request):
        if number == 1:  # model_spec
            signature = dict(_fields(payload)).get(3, b"").decode()
        elif number == 2:  # one entry of the inputs map
            entry = dict(_fields(payload))
            inputs[entry[1].decode()] = tf.make_ndarray(_TENSOR_PROTO.FromString(entry[2]))
    return signature, inputs


def read_warmup_requests(export_dir):
    """The warm-up records of an export as `[(signature_name, {input: ndarray})]`."""
    path = os.path.join(export_dir, WARMUP_FILE)
    return [parse_prediction_log(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def warmup_inputs(module):
    """{signature name: inputs} for one small request to each signature of a module."""
    requests = {name: {input_name: np.array(texts, object)
                       for input_name, texts in zip(text.inputs, text.example)}
                for name, text in module.text_signatures.items()}
    for name, text in module.ids_signatures.items():
        features, _ = text.encode(*(tf.constant(texts) for texts in text.example))
        requests[name] = {k: v.numpy() for k, v in features.items()}
    return requests


def write_warmup_requests(path, module):
    """Writes one `PredictionLog` per signature of `module` to the TFRecord `path`."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for name, inputs in warmup_inputs(module).items():
            writer.write(prediction_log(name, inputs))
