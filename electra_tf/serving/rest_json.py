"""TF Serving's REST JSON ↔ tensor mapping (`tensorflow_serving/util/json_tensor.cc`).

Pure functions between a request body and the request protos, and between results and the
response body: Predict's row (`"instances"`) and columnar (`"inputs"`) formats, `{"b64":
...}` strings, float32 written as the server writes them, Classify / Regress `"examples"`
as `tf.train.Example`s, and rapidjson's debug string that error messages quote. Each
function names the C++ function it follows. Parse errors of malformed JSON carry Python's
wording, not rapidjson's.
"""

import base64
import json

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2

# String outputs named so are written as {"b64": ...} (IsNamedTensorBytes).
BYTES_SUFFIX = "_bytes"
# JsonValueToDebugString: error messages quote at most this much JSON.
MAX_JSON_DEBUG_BYTES = 256
# DataTypeString (tensorflow/core/framework/types.cc) where it differs from tf.DType.name.
DATA_TYPE_STRING = {"float32": "float", "float64": "double", "float16": "half"}


class JsonError(ValueError):
    """A request body the server rejects; the message is the server's (`{"error": ...}`).

    Args:
        message: the status message.
        code: its `absl::StatusCode` name, quoted when an error is nested in another.
    """

    def __init__(self, message, code="INVALID_ARGUMENT"):
        super().__init__(message)
        self.code = code


# --- Predict ---------------------------------------------------------------------------------

def fill_predict_request_from_json(body, get_input_dtypes, request):
    """FillPredictRequestFromJson: `request`'s signature name and input tensors.

    Args:
        body: the JSON text.
        get_input_dtypes: signature name ("" for the default) → {input: DataType}, raising
            the server's error for an unknown signature (GetInfoMap).
        request: a `PredictRequest`, filled in place.
    Returns:
        True for the row format ("instances"), False for the columnar one ("inputs").
    """
    doc = _parse_json(body)
    _fill_signature(doc, request)
    name = request.model_spec.signature_name
    dtypes = get_input_dtypes(name)
    if not dtypes:  # e.g. "__saved_model_init_op", which every TF2 SavedModel lists
        raise JsonError(f"Failed to get input map for signature: {name or 'DEFAULT'}")
    if "instances" in doc:
        if "inputs" in doc:
            raise _format_error(doc, "Not formatted correctly expecting only one of 'inputs' "
                                     "or 'instances' keys to exist ")
        instances = _nonempty_list(doc, "instances", "Expecting 'instances' to be an "
                                   "list/array", "No values in 'instances' array")
        tensors, row_format = _tensors_from_instances(instances, dtypes), True
    elif "inputs" in doc:
        tensors, row_format = _tensors_from_inputs(doc["inputs"], dtypes), False
    else:
        raise JsonError("Missing 'inputs' or 'instances' key")
    for alias, tensor in tensors.items():
        request.inputs[alias].CopyFrom(tensor)
    return row_format


def make_json_from_tensors(outputs, row_format):
    """MakeJsonFromTensors: {output: array} → {"predictions": ...} (rows: one entry per
    batch row, an object of outputs or the value itself when there is one output) or
    {"outputs": ...} (columns: the output, or an object of them)."""
    if not outputs:
        raise JsonError("Cannot convert empty tensor map to JSON")
    columns = {name: _json_values(array, name) for name, array in sorted(outputs.items())}
    if not row_format:
        return {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns}
    batch = None
    for name, array in sorted(outputs.items()):
        if array.ndim == 0:
            raise JsonError(f"Tensor name: {name} has no shape information ")
        if batch is not None and array.shape[0] != batch:
            raise JsonError(f"Tensor name: {name} has inconsistent batch size: "
                            f"{array.shape[0]} expecting: {batch}")
        batch = array.shape[0]
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{name: columns[name][i] for name in columns}
                            for i in range(batch)]}


def _tensors_from_instances(instances, dtypes):
    """FillTensorMapFromInstancesList: the row format, one instance per batch row."""
    if not isinstance(instances[0], dict) and len(dtypes) > 1:
        raise JsonError("instances is a plain list, but expecting list of objects as multiple "
                        "input tensors required as per tensorinfo_map")

    def is_object(value):
        return isinstance(value, dict) and not _is_base64_object(value)

    by_object = is_object(instances[0])
    rows, shapes = {name: [] for name in dtypes}, {}
    for i, instance in enumerate(instances):
        if by_object != is_object(instance):
            raise JsonError(f"Expecting object but got list at item {i} of input list"
                            if by_object else
                            f"Expecting value/list but got object at item {i} of input list")
        items = instance.items() if by_object else [(next(iter(dtypes)), instance)]
        for name, value in items:
            try:
                _add_instance_item(value, name, dtypes, rows, shapes)
            except JsonError as error:
                where = f" key: {name}" if by_object else ""
                raise JsonError(f"Failed to process element: {i}{where} of 'instances' list. "
                                f"Error: {error.code}: {error}") from None
        if by_object and set(instance) != set(dtypes):
            raise JsonError(f"Failed to process element: {i} of 'instances' list. JSON "
                            f"object: {json_debug_string(instance)} keys must be equal to: "
                            f"{','.join(sorted(dtypes))}")
    return {name: tf.make_tensor_proto(np.stack([tf.make_ndarray(p) for p in protos]),
                                       dtype=tf.as_dtype(dtypes[name]))
            for name, protos in rows.items() if protos}


def _add_instance_item(value, name, dtypes, rows, shapes):
    """AddInstanceItem: every instance of an input has the first one's size and shape."""
    if name not in dtypes:
        raise JsonError(f"JSON object: does not have named input: {name}")
    proto = _json_tensor(value, dtypes[name])
    shape = [d.size for d in proto.tensor_shape.dim]
    if name in shapes:
        first = shapes[name]
        if np.prod(first) != np.prod(shape):
            raise JsonError(f"Expecting tensor size: {int(np.prod(first))} but got: "
                            f"{int(np.prod(shape))}")
        if first != shape:
            raise JsonError(f"Expecting shape {shape_string(first)} but got: "
                            f"{shape_string(shape)}")
    shapes[name] = shape
    rows[name].append(proto)


def _tensors_from_inputs(inputs, dtypes):
    """FillTensorMapFromInputsMap: the columnar format, each input's whole batch; an object
    must name every input (other keys are ignored, as the server ignores them)."""
    if not isinstance(inputs, dict) or _is_base64_object(inputs):
        if len(dtypes) > 1:
            raise JsonError("inputs is a plain value/list, but expecting an object as "
                            "multiple input tensors required as per tensorinfo_map")
        name = next(iter(dtypes))
        return {name: _json_tensor(inputs, dtypes[name])}
    tensors = {}
    for name, dtype in dtypes.items():
        if name not in inputs:
            raise JsonError(f"Missing named input: {name} in 'inputs' object.")
        tensors[name] = _json_tensor(inputs[name], dtype)
    return tensors


def _json_tensor(value, dtype):
    """FillTensorProto: a JSON value (nested lists) → a TensorProto of `dtype`, every list
    at its level and of the size the first element's shape says (GetDenseTensorShape)."""
    shape, item = [], value
    while isinstance(item, list):
        shape.append(len(item))
        item = item[0] if item else None
    flat = []

    def fill(item, level):
        if not isinstance(item, list):
            if level != len(shape):
                raise JsonError(f"JSON Value: {json_debug_string(item)} found at incorrect "
                                f"level: {level + 1} in the JSON DOM. Expected at level: "
                                f"{len(shape)}")
            flat.append(_tensor_value(item, dtype))
            return
        if level >= len(shape):
            raise JsonError(f"Encountered list at unexpected level: {level} expected < "
                            f"{len(shape)}")
        if len(item) != shape[level]:
            raise JsonError(f"Encountered list at unexpected size: {len(item)} at level: "
                            f"{level} expected size: {shape[level]}")
        for element in item:
            fill(element, level + 1)

    fill(value, 0)
    np_dtype = object if dtype == types_pb2.DT_STRING else tf.as_dtype(dtype).as_numpy_dtype
    return tf.make_tensor_proto(np.array(flat, dtype=np_dtype).reshape(shape),
                                dtype=tf.as_dtype(dtype))


def _tensor_value(value, dtype):
    """AddValueToTensor (and a {"b64": ...} object for a string): one leaf as `dtype`."""
    name = tf.as_dtype(dtype).name
    if isinstance(value, dict):
        if name == "string":
            return _decode_base64(value)
    elif name in ("float32", "float64"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
    elif name in ("int32", "int16", "int8", "uint8", "int64"):
        if _is_int(value, 64 if name == "int64" else 32):
            return value
    elif name == "string":
        if isinstance(value, str):
            return value.encode("utf-8")
    elif name == "bool":
        if isinstance(value, bool):
            return value
    else:
        raise JsonError(f"Conversion of JSON Value: {json_debug_string(value)} to type: "
                        f"{type_string(dtype)}", "UNIMPLEMENTED")
    raise JsonError(f"JSON Value: {json_debug_string(value)} Type: {_json_type(value)} is "
                    f"not of expected type: {type_string(dtype)}")


def _is_int(value, bits):
    return isinstance(value, int) and not isinstance(value, bool) and (
        -2 ** (bits - 1) <= value < 2 ** (bits - 1))


def _json_values(array, name):
    """AddTensorValues: nested lists of JSON values; strings as text, or {"b64": ...} for
    outputs named *_bytes, float32 as WriteDecimal writes them."""
    as_bytes = array.dtype == object and name.endswith(BYTES_SUFFIX)

    def leaf(x):
        if isinstance(x, bytes):
            if as_bytes:
                return {"b64": base64.b64encode(x).decode("ascii")}
            return x.decode("utf-8", "replace")
        return _float32_json(x) if array.dtype == np.float32 else x

    def walk(x):
        return [walk(v) for v in x] if isinstance(x, list) else leaf(x)

    return walk(array.tolist())


def _float32_json(value):
    """WriteDecimal: a float32 as the JSON number the server writes, read as a Python float:
    six significant digits (absl::StrCat) when they read back as the same float32, else
    nine (max_digits10)."""
    value = np.float32(value)
    text = "%g" % value
    if np.float32(text) != value:
        text = "%.9g" % value
    return float(text)


# --- Classify and Regress --------------------------------------------------------------------

def fill_classify_regress_request_from_json(body, request):
    """FillClassifyRegressRequestFromJson: the signature name, "context" and "examples"
    into a `ClassificationRequest` or `RegressionRequest`, filled in place."""
    doc = _parse_json(body)
    _fill_signature(doc, request)
    examples = request.input.example_list.examples
    if "context" in doc:
        request.input.example_list_with_context.context.CopyFrom(
            example_from_json(doc["context"]))
        examples = request.input.example_list_with_context.examples
    if "examples" not in doc:  # the server says "classify" for regress too
        raise _format_error(doc, "When method is classify, key 'examples' is expected and "
                                 "was not found")
    for value in _nonempty_list(doc, "examples", "Expecting 'examples' value to be an "
                                "list/array", "'examples' value is an empty array"):
        examples.add().CopyFrom(example_from_json(value))


def make_json_from_classification_result(result):
    """MakeJsonFromClassificationResult: {"results": per example, [label, score] per
    class}."""
    return {"results": [[[c.label, _float32_json(c.score)] for c in classifications.classes]
                        for classifications in result.classifications]}


def make_json_from_regression_result(result):
    """MakeJsonFromRegressionResult: {"results": one number per example}."""
    return {"results": [_float32_json(r.value) for r in result.regressions]}


def example_from_json(value):
    """MakeExampleFromJsonObject: {feature: value or list} → tf.train.Example; strings and
    {"b64": ...} are bytes, whole numbers and booleans int64, decimals float."""
    if not isinstance(value, dict):
        raise JsonError(f"Example must be JSON object but got JSON {_json_type(value)}")
    example = tf.train.Example()
    for name, content in value.items():
        feature = example.features.feature[name]
        for item in content if isinstance(content, list) else [content]:
            _add_feature_value(item, name, feature)
    return example


def _add_feature_value(value, name, feature):
    """AddValueToFeature: one value into the feature's list, all of one kind."""
    if value is None or isinstance(value, list) or (
            isinstance(value, dict) and not _is_base64_object(value)):
        raise JsonError(f"Feature: {name} has element with unexpected JSON type: "
                        f"{_json_type(value)}")
    if isinstance(value, (str, dict)):
        kind = "bytes_list"
        item = value.encode("utf-8") if isinstance(value, str) else _decode_base64(value)
    elif isinstance(value, float):
        kind, item = "float_list", value
    else:  # bool or whole number
        if not isinstance(value, bool) and value >= 2 ** 63:
            raise JsonError(f"Feature: {name} has uint64_t element. Only int64_t is "
                            "supported.")
        kind, item = "int64_list", int(value)
    current = feature.WhichOneof("kind")
    if current not in (None, kind):
        raise JsonError(f"Unexpected element type in feature: {name} expecting type: "
                        f"{current.split('_')[0]}")
    getattr(feature, kind).value.append(item)


# --- Shared ----------------------------------------------------------------------------------

def _parse_json(body):
    """ParseJson: a JSON object."""
    if not body:
        raise JsonError("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as error:
        raise JsonError(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    if not isinstance(doc, dict):
        raise _format_error(doc, "Is not object")
    return doc


def _fill_signature(doc, request):
    """FillSignature: the optional "signature_name", a string."""
    if "signature_name" in doc:
        if not isinstance(doc["signature_name"], str):
            raise _format_error(doc, "not formatted correctly. 'signature_name' key must be "
                                     "a string value.")
        request.model_spec.signature_name = doc["signature_name"]


def _nonempty_list(doc, key, not_list_message, empty_message):
    """doc[key], checked to be a list (else `not_list_message`) that is not empty."""
    if not isinstance(doc[key], list):
        raise _format_error(doc, not_list_message)
    if not doc[key]:
        raise _format_error(doc, empty_message)
    return doc[key]


def _format_error(value, message):
    """FormatError: the offending JSON, then what was expected."""
    return JsonError(f"JSON Value: {json_debug_string(value)} {message}")


def _is_base64_object(value):
    """IsValBase64Object: {"b64": "<string>"} and nothing else."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _decode_base64(value):
    """JsonDecodeBase64Object."""
    if not _is_base64_object(value):
        raise JsonError(f"JSON Value: {json_debug_string(value)} not formatted correctly "
                        "for base64 data")
    text = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise JsonError("Unable to base64 decode") from None


def _json_type(value):
    """JsonTypeString."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def type_string(datatype):
    """DataTypeString of a DataType enum: "string", "int32", "float"."""
    name = tf.as_dtype(datatype).name
    return DATA_TYPE_STRING.get(name, name)


def shape_string(shape):
    """TensorShape::DebugString: "[2,3]"."""
    return "[" + ",".join(str(d) for d in shape) + "]"


def json_debug_string(value):
    """JsonValueToDebugString: rapidjson's PrettyWriter (4-space indent, arrays on one line),
    cut after the token that reaches 256 bytes."""
    out, size = [], 0
    for token in _pretty_tokens(value, []):
        if size >= MAX_JSON_DEBUG_BYTES:
            break
        out.append(token)
        size += len(token.encode("utf-8"))
    return "".join(out)


def _pretty_tokens(value, stack):
    """The writer's calls as text, each with the prefix PrettyWriter puts before it.
    `stack` holds [in_array, values written] per open container."""
    if isinstance(value, dict):
        yield _prefix(stack) + "{"
        stack.append([False, 0])
        for key, item in value.items():
            yield _prefix(stack) + json.dumps(key, ensure_ascii=False)
            yield from _pretty_tokens(item, stack)
        empty = stack.pop()[1] == 0
        yield "}" if empty else "\n" + "    " * len(stack) + "}"
    elif isinstance(value, list):
        yield _prefix(stack) + "["
        stack.append([True, 0])
        for item in value:
            yield from _pretty_tokens(item, stack)
        stack.pop()
        yield "]"
    else:
        yield _prefix(stack) + (repr(value) if isinstance(value, float)
                                else json.dumps(value, ensure_ascii=False))


def _prefix(stack):
    """PrettyWriter::PrettyPrefix for the next value in the innermost container."""
    if not stack:
        return ""
    level = stack[-1]
    in_array, count = level
    level[1] += 1
    if in_array:
        return ", " if count else ""
    text = ("," + "\n" if count % 2 == 0 else ": ") if count else "\n"
    return text + ("    " * len(stack) if count % 2 == 0 else "")
