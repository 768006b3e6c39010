"""TF Serving's request handling, in Python, over a loaded export: requests checked without
a model server (tests, users without Docker).

`LocalModelServer(export_dir)` answers what `tensorflow_model_server` answers: the gRPC
methods of `PredictionServiceStub` (`Predict`, `Classify`, `Regress`, `GetModelMetadata`,
with the request and response protos of `tensorflow_serving.apis`) and the REST API
(`rest("predict" | "classify" | "regress", body)`, the JSON mapping of `rest_json`). Each
rule cites the file of github.com/tensorflow/serving it comes from; the signatures are read
from `saved_model.pb` (SignatureDefs, method names included) and run with
`tf.saved_model.load`.

Written by hand because nothing installable provides it: tensorflow-serving-api holds only
the protos and gRPC stubs; the request handling is C++ inside the server. Not modelled:
version labels, timeouts, batching, and the session's own shape checks (a request tensor
whose rank the signature does not accept fails with TensorFlow's Python message).
"""

import importlib
import json
import os
import re

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    classification_pb2, get_model_metadata_pb2, predict_pb2, regression_pb2)

from electra_tf.serving import rest_json
from electra_tf.serving.examples import EXAMPLES_INPUT, serialized_examples
from electra_tf.serving.module import CLASSIFY_METHOD, PREDICT_METHOD, REGRESS_METHOD
from electra_tf.serving.rest_json import shape_string, type_string

importlib.import_module("tensorflow_text")  # registers the tokenizer ops the exports use

# tensorflow/cc/saved_model/signature_constants.h (the examples input is EXAMPLES_INPUT)
DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_CLASSES, CLASSIFY_SCORES, REGRESS_OUTPUTS = "classes", "scores", "outputs"
# get_model_metadata_impl.h: the one metadata field the server knows.
SIGNATURE_DEF_FIELD = "signature_def"
# What a Python (eager) call adds to a graph error's message, and a session does not.
EAGER_HEADER = re.compile(r"\AGraph execution error:\n\n(?:Detected at node .*?\n"
                          r"(?:.*\n)*?<stack traces unavailable>\n)?")
EAGER_SUFFIX = re.compile(r" \[Op:__inference_\w+\]\Z")


class ServingError(grpc.RpcError):
    """A failed request, as the gRPC stub raises it: `code()` a `grpc.StatusCode`,
    `details()` the server's message."""

    def __init__(self, code, message):
        super().__init__(message)
        self._code, self._message = code, message

    def code(self):
        return self._code

    def details(self):
        return self._message

    def __str__(self):  # absl::Status::ToString()
        return f"{self._code.name}: {self._message}"


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


class LocalModelServer:
    """One model of a TF Serving model server: an export directory served as `model_name`.

    Args:
        export_dir: a SavedModel directory (`<export_base>/<version>`); its base name is the
            version when it is an integer.
        model_name: the name requests use (`model_spec.name`, the REST URL's model).
        enable_signature_method_name_check: the server's flag of that name (default off,
            `model_servers/server.h`): on, Predict needs a predict/classify/regress method
            name and Classify / Regress their own.
    Example:
        server = LocalModelServer("exports/finetuned/1", "finetuned")
        server.rest("classify", {"signature_name": "sst_classify",
                                 "examples": [{"text": "a fine film"}]})
    """

    def __init__(self, export_dir, model_name="electra",
                 enable_signature_method_name_check=False):
        self.export_dir, self.model_name = export_dir, model_name
        base = os.path.basename(os.path.normpath(export_dir))
        self.version = int(base) if base.isdigit() else None
        self.method_name_check = enable_signature_method_name_check
        self.signature_defs = _read_signature_defs(export_dir)
        self._functions = tf.saved_model.load(export_dir).signatures

    # --- gRPC: PredictionService (apis/prediction_service.proto) ---------------------------

    def Predict(self, request, timeout=None):  # noqa: N802  (the stub's method name)
        """A `PredictRequest` → `PredictResponse` (servables/tensorflow/predict_util.cc)."""
        del timeout
        self._check_model_spec(request)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{name}" not found.')
        signature = self.signature_defs[name]
        if self.method_name_check and signature.method_name not in (
                PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):  # VerifySignature
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                f"Expected prediction signature method_name to be one of {{{PREDICT_METHOD}, "
                f"{CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}")
        _verify_request_inputs_size(signature, request.inputs)
        inputs = _input_values(signature, request.inputs)
        aliases = _output_aliases(signature, request.output_filter)
        outputs = self._run(name, signature, inputs)
        response = predict_pb2.PredictResponse()
        self._fill_model_spec(response.model_spec, name)
        for alias in aliases:
            response.outputs[alias].CopyFrom(_as_proto_field(outputs[alias]))
        return response

    def Classify(self, request, timeout=None):  # noqa: N802
        """A `ClassificationRequest` → `ClassificationResponse`
        (servables/tensorflow/classifier.cc)."""
        del timeout
        response = classification_pb2.ClassificationResponse()
        signature, n, outputs = self._run_examples(request, response, "classification")
        _classification_result(signature, n, outputs, response.result)
        return response

    def Regress(self, request, timeout=None):  # noqa: N802
        """A `RegressionRequest` → `RegressionResponse` (servables/tensorflow/regressor.cc)."""
        del timeout
        response = regression_pb2.RegressionResponse()
        _, n, outputs = self._run_examples(request, response, "regression")
        _regression_result(n, outputs[REGRESS_OUTPUTS], response.result)
        return response

    def GetModelMetadata(self, request, timeout=None):  # noqa: N802
        """The SignatureDefs (servables/tensorflow/get_model_metadata_impl.cc)."""
        del timeout
        self._check_model_spec(request)
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid(f"Metadata field {field} is not supported")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model_name
        if self.version is not None:
            response.model_spec.version.value = self.version
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in self.signature_defs.items():
            signature_defs.signature_def[key].CopyFrom(signature)
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_defs)
        return response

    # --- REST: model_servers/http_rest_api_handler.cc ---------------------------------------

    def rest(self, verb, body):
        """`POST /v1/models/<model_name>:<verb>` with a JSON body.

        Args:
            verb: "predict", "classify" or "regress".
            body: the request, a JSON string or a dict.
        Returns:
            The response body as a dict: {"predictions": ...} (an "instances" request),
            {"outputs": ...} (an "inputs" request), {"results": ...} (classify, regress), or
            {"error": message} (the server's message for a bad request).
        """
        text = body if isinstance(body, str) else json.dumps(body)
        handlers = {"predict": self._rest_predict, "classify": self._rest_classify,
                    "regress": self._rest_regress}
        try:
            if verb not in handlers:
                raise invalid(f"Malformed request: POST /v1/models/{self.model_name}:{verb}")
            return handlers[verb](text)
        except ServingError as error:  # MakeJsonFromStatus: the message only
            return {"error": error.details()}
        except rest_json.JsonError as error:
            return {"error": str(error)}

    def _rest_predict(self, text):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = self.model_name
        row_format = rest_json.fill_predict_request_from_json(text, self._input_dtypes,
                                                              request)
        outputs = self.Predict(request).outputs
        return rest_json.make_json_from_tensors(
            {alias: tf.make_ndarray(tensor) for alias, tensor in outputs.items()}, row_format)

    def _rest_classify(self, text):
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = self.model_name
        rest_json.fill_classify_regress_request_from_json(text, request)
        return rest_json.make_json_from_classification_result(self.Classify(request).result)

    def _rest_regress(self, text):
        request = regression_pb2.RegressionRequest()
        request.model_spec.name = self.model_name
        rest_json.fill_classify_regress_request_from_json(text, request)
        return rest_json.make_json_from_regression_result(self.Regress(request).result)

    def _input_dtypes(self, signature_name):
        """GetInfoMap: {input alias: DataType} of a signature, for the JSON mapping."""
        name = signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise invalid(f'Serving signature name: "{name}" not found in signature def')
        return {alias: info.dtype
                for alias, info in sorted(self.signature_defs[name].inputs.items())}

    # --- shared -----------------------------------------------------------------------------

    def _check_model_spec(self, request):
        """The servable lookup (predict_impl.cc: "Missing ModelSpec"; core/basic_manager.cc
        and core/manager.h, ServableRequest::DebugString: not found)."""
        if not request.HasField("model_spec"):
            raise invalid("Missing ModelSpec")
        spec = request.model_spec
        wanted = spec.version.value if spec.HasField("version") else None
        if spec.name != self.model_name or wanted not in (None, self.version):
            which = (f"Specific({spec.name}, {wanted})" if wanted is not None
                     else f"Latest({spec.name})")
            raise ServingError(grpc.StatusCode.NOT_FOUND,
                               f"Servable not found for request: {which}")

    def _run_examples(self, request, response, kind):
        """Classify / Regress up to their results (RunClassify, RunRegress): the signature,
        checked as a `kind` ("classification" or "regression") signature, run on the
        request's serialized examples; `response.model_spec` filled.

        Returns:
            (SignatureDef, number of examples, {output: array}).
        """
        self._check_model_spec(request)
        name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if name not in self.signature_defs:
            raise invalid(f"No signature was found with the name: {name}")
        signature = self.signature_defs[name]
        _check_examples_signature(signature, kind, self.method_name_check)
        examples = serialized_examples(request.input)
        if not examples:
            raise invalid("Input is empty.")
        outputs = self._run(name, signature, {EXAMPLES_INPUT: np.array(examples, object)})
        self._fill_model_spec(response.model_spec, name)
        return signature, len(examples), outputs

    def _run(self, name, signature, inputs):
        """The signature on {alias: array} → {alias: array}; the session's dtype check
        first (tensorflow/core/framework/function.cc, FunctionCallFrame::SetArgs: feeds are
        args in the signature's input order, which for TF2 exports is sorted)."""
        tensors = {}
        for i, (alias, info) in enumerate(sorted(signature.inputs.items())):
            value = np.asarray(inputs[alias])
            dtype = tf.as_dtype(value.dtype if value.dtype.kind not in "SUO" else tf.string)
            if dtype.as_datatype_enum != info.dtype:
                raise invalid(f"Expects arg[{i}] to be {type_string(info.dtype)} but "
                              f"{type_string(dtype.as_datatype_enum)} is provided")
            tensors[alias] = tf.constant(value, dtype)
        if name not in self._functions:  # "__saved_model_init_op": no function to call
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                               f"Signature {name} has no function to run")
        try:
            outputs = self._functions[name](**tensors)
        except tf.errors.OpError as error:  # the graph's own checks (ids, tf.Example parsing)
            code = next(c for c in grpc.StatusCode if c.value[0] == error.error_code)
            # A session's message: without the eager call's header and "[Op:...]" suffix.
            message = EAGER_SUFFIX.sub("", EAGER_HEADER.sub("", error.message, count=1))
            raise ServingError(code, message) from None
        except (TypeError, ValueError) as error:  # shapes the signature does not accept
            raise invalid(str(error)) from None
        return {k: v.numpy() for k, v in outputs.items()}

    def _fill_model_spec(self, spec, signature_name):
        """util.cc, MakeModelSpec: the model, the resolved signature name and the version."""
        spec.name = self.model_name
        spec.signature_name = signature_name
        if self.version is not None:
            spec.version.value = self.version


def _read_signature_defs(export_dir):
    """{name: SignatureDef} of the export's serving meta graph (what the server reads)."""
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"{export_dir}: no meta graph tagged 'serve'")


# --- Predict: servables/tensorflow/predict_util.cc, tensorflow/cc/saved_model/util.cc --------

def _verify_request_inputs_size(signature, request_inputs):
    """predict_util.cc, VerifyRequestInputsSize."""
    sent, expected = set(request_inputs), set(signature.inputs)
    if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(expected)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - sent))}}}.")


def _input_values(signature, request_inputs):
    """saved_model/util.cc, GetInputValues: {alias: array} of the request (or defaults)."""
    values = {}
    for alias, info in sorted(signature.inputs.items()):
        if alias in request_inputs:
            proto = request_inputs[alias]
        elif alias in signature.defaults:
            proto = signature.defaults[alias]
        else:
            raise invalid(
                f"Signature input alias: {alias}(feed name: {info.name}) not found in request "
                f"and no default value provided. Inputs expected to be in the request "
                f"{{{','.join(sorted(request_inputs))}}}, or default input alias set: "
                f"{','.join(sorted(signature.defaults))}")
        try:
            values[alias] = tf.make_ndarray(proto)
        except (TypeError, ValueError):
            raise invalid(f"tensor parsing error: {alias}") from None
    return values


def _output_aliases(signature, output_filter):
    """predict_util.cc, PreProcessPrediction: the filter's aliases, else every output."""
    aliases = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid(f"output tensor alias not found in signature: {alias} Outputs "
                          f"expected to be in the set {{{','.join(sorted(signature.outputs))}}}.")
        if alias in aliases:
            raise invalid(f"duplicate output tensor alias: {alias}")
        aliases.append(alias)
    return aliases or sorted(signature.outputs)


def _as_proto_field(array):
    """Tensor::AsProtoField: a TensorProto with the values in its typed field, not in
    `tensor_content`."""
    proto = tf.make_tensor_proto(array)
    if proto.tensor_content:
        field = {tf.float32: "float_val", tf.float64: "double_val", tf.int64: "int64_val",
                 tf.bool: "bool_val"}.get(tf.as_dtype(proto.dtype), "int_val")
        proto.ClearField("tensor_content")
        getattr(proto, field).extend(np.asarray(array).ravel().tolist())
    return proto


# --- Classify / Regress: servables/tensorflow/classifier.cc, regressor.cc ---------------------

def _check_examples_signature(signature, kind, method_name_check):
    """PreProcessClassification / PreProcessRegression: the method name (only with the
    check on), one input `inputs`; classification: one or two outputs, at least one of
    `classes` and `scores`; regression: one output `outputs`."""
    method = CLASSIFY_METHOD if kind == "classification" else REGRESS_METHOD
    if method_name_check and signature.method_name != method:
        raise invalid(f"Expected {kind} signature method_name to be {method}. "
                      f"Was: {signature.method_name}")
    if len(signature.inputs) != 1:
        raise invalid("Expected one input Tensor.")
    outputs = set(signature.outputs)
    if kind == "classification" and len(outputs) not in (1, 2):
        raise invalid(f"Expected one or two output Tensors, found {len(outputs)}")
    if kind == "regression" and len(outputs) != 1:
        raise invalid("Expected one output Tensor.")
    if EXAMPLES_INPUT not in signature.inputs:
        raise invalid(f"No {kind} inputs found in SignatureDef: {signature}")
    if kind == "classification" and not outputs & {CLASSIFY_CLASSES, CLASSIFY_SCORES}:
        raise invalid(f'Expected classification signature outputs to contain at least one of '
                      f'"{CLASSIFY_CLASSES}" or "{CLASSIFY_SCORES}". Signature was: {signature}')
    if kind == "regression" and REGRESS_OUTPUTS not in outputs:
        raise invalid(f"No regression outputs found in SignatureDef: {signature}")


def _classification_result(signature, num_examples, outputs, result):
    """classifier.cc, PostProcessClassificationResult: checks the outputs' rank, dtype and
    batch size, then fills one `Classifications` per example."""
    tensors = {k: outputs[k] for k in (CLASSIFY_CLASSES, CLASSIFY_SCORES)
               if k in signature.outputs}
    for key, array in tensors.items():
        if array.ndim != 2:
            raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got "
                          f"{shape_string(array.shape)}")
        wanted = "DT_STRING" if key == CLASSIFY_CLASSES else "DT_FLOAT"
        if _dtype_name(array) != wanted:
            raise invalid(f"Expected {key} Tensor of {wanted}. Got: {_dtype_name(array)}")
        if array.shape[0] != num_examples:
            raise invalid(f"Expected {key} output batch size of {num_examples}. "
                          f"Got: {array.shape[0]}")
    widths = [a.shape[1] for a in tensors.values()]
    if len(set(widths)) > 1:
        raise invalid(f"Tensors class and score should match in dim_size(1). Got "
                      f"{widths[0]} vs. {widths[1]}")
    classes, scores = tensors.get(CLASSIFY_CLASSES), tensors.get(CLASSIFY_SCORES)
    for i in range(num_examples):
        classifications = result.classifications.add()
        for c in range(widths[0]):
            entry = classifications.classes.add()
            if classes is not None:  # a proto3 string: Python needs text where C++ copies bytes
                entry.label = classes[i, c].decode("utf-8", "replace")
            if scores is not None:
                entry.score = scores[i, c]


def _regression_result(num_examples, array, result):
    """regressor.cc, PostProcessRegressionResult: [batch] or [batch, 1] float32."""
    if not (array.ndim == 1 or (array.ndim == 2 and array.shape[1] == 1)):
        raise invalid(f"Expected output Tensor shape to be either [batch_size] or "
                      f"[batch_size, 1] but got {shape_string(array.shape)}")
    if array.shape[0] != num_examples:
        raise invalid(f"Input batch size did not match output batch size: {num_examples} "
                      f"vs. {array.shape[0]}")
    if array.dtype != np.float32:
        raise invalid(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_name(array)}")
    for value in array.ravel():
        result.regressions.add().value = value


def _dtype_name(array):
    """DataType_Name of an array's dtype: "DT_INT32"."""
    dtype = tf.string if array.dtype == object else tf.as_dtype(array.dtype)
    return types_pb2.DataType.Name(dtype.as_datatype_enum)
