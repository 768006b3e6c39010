"""Warm-up requests: what TF Serving replays when it loads a version.

`assets.extra/tf_serving_warmup_requests` is a TFRecord file of
`tensorflow.serving.PredictionLog`s (`tensorflow_serving/apis/prediction_log.proto`), one
small request per signature: a `PredictLog` for the text, ids and `_examples` signatures,
a `ClassifyLog` / `RegressLog` for `_classify` / `_regress`, so that the server's
Classify and Regress paths are warmed too.
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2, input_pb2, predict_pb2, prediction_log_pb2, regression_pb2)

from electra_tf.serving.examples import EXAMPLES_INPUT, serialized_examples, text_example
from electra_tf.serving.module import CLASSIFY_METHOD, REGRESS_METHOD

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def predict_request(signature_name, inputs, model_name="electra"):
    """A `PredictRequest`.

    Args:
        signature_name: the signature to call.
        inputs: {input name: NumPy array or list}.
        model_name: `model_spec.name` (TF Serving's warm-up ignores it).
    """
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def examples_input(examples):
    """An `Input` holding `tf.train.Example`s, as Classify / Regress requests carry them."""
    request_input = input_pb2.Input()
    request_input.example_list.examples.extend(examples)
    return request_input


# The request and log messages of the Classify and Regress APIs.
EXAMPLE_LOGS = {
    CLASSIFY_METHOD: (classification_pb2.ClassificationRequest, "classify_log",
                      prediction_log_pb2.ClassifyLog),
    REGRESS_METHOD: (regression_pb2.RegressionRequest, "regress_log",
                     prediction_log_pb2.RegressLog)}


def predict_log(signature_name, inputs, model_name="electra"):
    """A `PredictionLog` of one `predict_request`."""
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(
        request=predict_request(signature_name, inputs, model_name)))


def warmup_requests(module, model_name="electra"):
    """One `PredictionLog` per signature of a `ServingModule`, each a small request made
    from the signature's example texts."""
    logs = []
    for name, text in module.text_signatures.items():
        logs.append(predict_log(name, {n: np.array(texts, object)
                                       for n, texts in zip(text.inputs, text.example)},
                                model_name))
    for name, text in module.ids_signatures.items():
        features, _ = text.encode(*(tf.constant(texts) for texts in text.example))
        logs.append(predict_log(name, {k: v.numpy() for k, v in features.items()},
                                model_name))
    for name, text in module.example_signatures.items():
        examples = [text_example(**dict(zip(text.inputs, row))) for row in zip(*text.example)]
        method = module.method_names[name]
        if method in EXAMPLE_LOGS:
            request_class, field, log_class = EXAMPLE_LOGS[method]
            request = request_class(input=examples_input(examples))
            request.model_spec.name = model_name
            request.model_spec.signature_name = name
            logs.append(prediction_log_pb2.PredictionLog(**{field: log_class(request=request)}))
        else:
            serialized = np.array([e.SerializeToString() for e in examples], object)
            logs.append(predict_log(name, {EXAMPLES_INPUT: serialized}, model_name))
    return logs


def write_warmup_requests(path, module):
    """Writes `warmup_requests(module)` to the TFRecord file `path`."""
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in warmup_requests(module):
            writer.write(log.SerializeToString())


def read_warmup_requests(export_dir):
    """The warm-up records of an export: a list of `PredictionLog`s."""
    path = os.path.join(export_dir, WARMUP_FILE)
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(path)]


def request_inputs(log):
    """What the server hands the signature for a `PredictionLog`'s request.

    Returns:
        (signature name, {input name: ndarray}): a Predict request's input tensors; for a
        Classify / Regress request, its examples serialized as `inputs` (string [batch]).
    """
    kind = log.WhichOneof("log_type")
    if kind not in ("predict_log", "classify_log", "regress_log"):
        raise ValueError(f"a warm-up record of kind {kind}: expected predict_log, "
                         "classify_log or regress_log")
    request = getattr(log, kind).request
    if kind == "predict_log":
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    else:
        inputs = {EXAMPLES_INPUT: np.array(serialized_examples(request.input), object)}
    return request.model_spec.signature_name, inputs
