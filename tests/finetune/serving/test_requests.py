"""The requests of docs/serving-requests.md, and TF Serving's request rules as
`LocalModelServer` (and its JSON mapping, `rest_json`) applies them.

The page's first Python block builds its two exports (pretraining: the bundled tiny
checkpoint; fine-tuned: five tasks of a tiny random model, seed 3); here it runs once more,
into a temporary directory. Every request the page documents (a `curl` block after a
`<!-- request -->` comment) is sent to a `LocalModelServer` of the model its URL names, and
the response must be what the page shows: the keys shown (a shown object may leave keys
out), whole lists, numbers within 1e-3, an error's whole message or, for an error raised
in the graph, its first line. The other tests check the mapping rules directly.
"""

import base64
import json
import re

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, input_pb2, predict_pb2, regression_pb2

from electra_tf.serving import rest_json
from electra_tf.serving.examples import serialized_examples, text_example
from electra_tf.serving.local_server import LocalModelServer
from electra_tf.serving.warmup import predict_request, read_warmup_requests
from tests.conftest import REPO

DOC = REPO / "docs" / "serving-requests.md"
DOC_ROOT = "/tmp/electra_docs/serving_requests"
# A documented request: the marker, a skipped bash block holding one curl, its response.
REQUEST = re.compile(
    r"^<!-- request -->\n<!-- not run: [^>]*-->\n```bash\n(?P<curl>.*?)\n```\n"
    r"```json\n(?P<response>.*?)\n```", re.M | re.S)
CURL = re.compile(r"\Acurl -s localhost:8501/v1/models/(?P<model>\w+):(?P<verb>\w+) "
                  r"-d '(?P<body>[^']*)'\Z", re.S)
FENCE = re.compile(r"^```python\n(?P<code>.*?)^```", re.M | re.S)


def documented_requests(text):
    """[(line, model, verb, body, response)] of the page's requests; body and response are
    JSON text."""
    found = []
    for match in REQUEST.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        curl = CURL.match(match.group("curl"))
        assert curl, f"serving-requests.md:{line}: not one curl POST: {match.group('curl')}"
        found.append((line, curl.group("model"), curl.group("verb"), curl.group("body"),
                      match.group("response")))
    return found


def assert_shown(shown, actual, where="response"):
    """What the page shows is in the actual response: objects' shown keys, whole lists,
    numbers within 1e-3, errors whole or up to the end of a line."""
    if isinstance(shown, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not an object"
        for key, value in shown.items():
            assert key in actual, f"{where}: no key {key!r} in {sorted(actual)}"
            assert_shown(value, actual[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(actual, list) and len(actual) == len(shown), (
            f"{where}: {actual!r} is not a list of {len(shown)}")
        for i, (a, b) in enumerate(zip(shown, actual)):
            assert_shown(a, b, f"{where}[{i}]")
    elif isinstance(shown, str) and where == "response.error":
        assert actual == shown or actual.startswith(shown + "\n"), f"{where}: {actual!r}"
    elif isinstance(shown, float):
        assert isinstance(actual, (int, float)) and abs(actual - shown) <= 1e-3, (
            f"{where}: {actual!r} != {shown!r}")
    else:
        assert actual == shown and type(actual) is type(shown), f"{where}: {actual!r}"


PAIRS = {"text_a": ["A man sleeps.", "The cat sat on the mat ."],
         "text_b": ["A person rests.", "x"]}


def predict(signature, model="finetuned", **inputs):
    """A `PredictRequest` of `inputs` (lists or arrays) to `model`."""
    return predict_request(signature, inputs, model)


def serialized_example(**texts):
    return text_example(**texts).SerializeToString()


def rpc_error(call, request):
    """(code, message) of the error a call raises."""
    with pytest.raises(grpc.RpcError) as error:
        call(request)
    return error.value.code(), error.value.details()


@pytest.fixture(scope="module")
def doc_text():
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def servers(doc_text, tmp_path_factory):
    """{model name: LocalModelServer} of the exports the page's first block builds."""
    setup = FENCE.search(doc_text).group("code")
    assert DOC_ROOT in setup
    namespace = {"__name__": "serving_requests_setup"}
    exec(compile(setup.replace(DOC_ROOT, str(tmp_path_factory.mktemp("requests"))),
                 "serving-requests.md", "exec"), namespace)
    return {"electra": namespace["electra"], "finetuned": namespace["finetuned"]}


@pytest.fixture(scope="module")
def finetuned(servers):
    return servers["finetuned"]


def test_the_page_documents_every_kind_of_request(doc_text):
    kinds = {(model, verb, json.loads(body).get("signature_name", "serving_default"))
             for _, model, verb, body, _ in documented_requests(doc_text)}
    for kind in [("electra", "predict", "serving_default"),
                 ("electra", "predict", "discriminator_pair"),
                 ("electra", "predict", "generator_text"),
                 ("electra", "predict", "discriminator_ids"),
                 ("electra", "predict", "discriminator_examples"),
                 ("finetuned", "predict", "sst_text"), ("finetuned", "predict", "sts_text"),
                 ("finetuned", "predict", "chunk_text"), ("finetuned", "predict", "squad_text"),
                 ("finetuned", "predict", "mnli_examples"),
                 ("finetuned", "classify", "sst_classify"),
                 ("finetuned", "classify", "mnli_classify"),
                 ("finetuned", "regress", "sts_regress")]:
        assert kind in kinds
    bodies = [json.loads(body) for _, _, verb, body, _ in documented_requests(doc_text)
              if verb == "predict"]
    assert any("instances" in b for b in bodies) and any("inputs" in b for b in bodies)


def test_documented_requests_get_the_documented_responses(doc_text, servers):
    requests = documented_requests(doc_text)
    assert len(requests) >= 20
    for line, model, verb, body, response in requests:
        actual = servers[model].rest(verb, body)
        try:
            assert_shown(json.loads(response), actual)
        except AssertionError as error:
            raise AssertionError(f"serving-requests.md:{line}: {error}\nactual: "
                                 f"{json.dumps(actual)[:2000]}") from None


def test_assert_shown_fails_on_a_difference():
    actual = {"predictions": [{"label": "1", "probabilities": [0.25, 0.75]}]}
    assert_shown({"predictions": [{"label": "1"}]}, actual)
    for shown in ({"predictions": [{"label": "0"}]},
                  {"predictions": [{"probabilities": [0.25]}]},
                  {"predictions": [{"probabilities": [0.25, 0.76]}]},
                  {"outputs": []}):
        with pytest.raises(AssertionError):
            assert_shown(shown, actual)
    assert_shown({"error": "a b"}, {"error": "a b\n\t [[{{node x}}]]"})
    with pytest.raises(AssertionError):
        assert_shown({"error": "a"}, {"error": "a b"})


# --- Predict ----------------------------------------------------------------------------------

def test_rows_and_columns_give_the_same_values(finetuned):
    rows = finetuned.rest("predict", {"signature_name": "mnli_text", "instances": [
        {"text_a": a, "text_b": b} for a, b in zip(PAIRS["text_a"], PAIRS["text_b"])]})
    columns = finetuned.rest("predict", {"signature_name": "mnli_text", "inputs": PAIRS})
    assert sorted(rows) == ["predictions"] and sorted(columns) == ["outputs"]
    assert len(rows["predictions"]) == 2
    for i, row in enumerate(rows["predictions"]):
        assert row == {name: column[i] for name, column in columns["outputs"].items()}
    # a batch is padded to its longest member, in rows as in columns
    assert len(rows["predictions"][1]["tokens"]) == len(rows["predictions"][0]["tokens"])


def test_one_output_is_written_without_its_name(finetuned):
    example = {"b64": base64.b64encode(serialized_example(
        text_a="A man sleeps.", text_b="A person rests.")).decode()}
    rows = finetuned.rest("predict", {"signature_name": "sts_regress", "instances": [example]})
    columns = finetuned.rest("predict", {"signature_name": "sts_regress", "inputs": [example]})
    score = finetuned.rest("predict", {"signature_name": "sts_text", "inputs": {
        "text_a": ["A man sleeps."], "text_b": ["A person rests."]}})["outputs"]["score"]
    assert rows == {"predictions": score} and columns == {"outputs": score}


def test_b64_is_the_string_as_bytes(finetuned):
    plain = finetuned.rest("predict", {"signature_name": "sst_text", "instances": ["dull"]})
    b64 = finetuned.rest("predict", {"signature_name": "sst_text",
                                     "instances": [{"b64": base64.b64encode(b"dull").decode()}]})
    assert b64 == plain and "predictions" in plain
    bad = finetuned.rest("predict", {"signature_name": "sst_text",
                                     "instances": [{"b64": "not base64!"}]})
    assert bad == {"error": "Failed to process element: 0 of 'instances' list. Error: "
                            "INVALID_ARGUMENT: Unable to base64 decode"}


def test_instances_and_inputs_are_exclusive_and_one_is_required(finetuned):
    both = finetuned.rest("predict", {"instances": ["x"], "inputs": ["x"]})
    assert both["error"].endswith("Not formatted correctly expecting only one of 'inputs' or "
                                  "'instances' keys to exist ")
    assert finetuned.rest("predict", {"signature_name": "sst_text"}) == {
        "error": "Missing 'inputs' or 'instances' key"}


def test_instances_must_share_a_shape(servers):
    ids = [{"input_ids": [101, 102], "input_mask": [1, 1], "segment_ids": [0, 0]},
           {"input_ids": [101, 5, 102], "input_mask": [1, 1, 1], "segment_ids": [0, 0, 0]}]
    out = servers["electra"].rest("predict", {"signature_name": "discriminator_ids",
                                              "instances": ids})
    assert out == {"error": "Failed to process element: 1 key: input_ids of 'instances' list. "
                            "Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 3"}


def test_grpc_predict_answers_with_typed_fields_and_its_model_spec(finetuned):
    request = predict("mnli_text", **PAIRS)
    request.output_filter.extend(["label", "probabilities"])
    response = finetuned.Predict(request, timeout=5.0)
    assert sorted(response.outputs) == ["label", "probabilities"]
    assert response.outputs["probabilities"].float_val  # AsProtoField, not tensor_content
    assert not response.outputs["probabilities"].tensor_content
    assert tf.make_ndarray(response.outputs["probabilities"]).shape == (2, 3)
    assert (response.model_spec.name, response.model_spec.signature_name,
            response.model_spec.version.value) == ("finetuned", "mnli_text", 1)
    request.output_filter.append("nope")
    assert rpc_error(finetuned.Predict, request)[1].startswith(
        "output tensor alias not found in signature: nope Outputs expected to be in the set "
        "{input_ids,input_mask,label,")


def test_grpc_predict_errors(finetuned):
    missing = predict("mnli_text", text_a=["x"])
    assert rpc_error(finetuned.Predict, missing) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "input size does not match signature: 1!=2 len({text_a}) != len({text_a,text_b}). "
        "Sent extra: {}. Missing but required: {text_b}.")
    renamed = predict("mnli_text", text_a=["x"], text_c=["y"])
    assert rpc_error(finetuned.Predict, renamed)[1] == (
        "Signature input alias: text_b(feed name: mnli_text_text_b:0) not found in request and "
        "no default value provided. Inputs expected to be in the request {text_a,text_c}, or "
        "default input alias set: ")
    assert rpc_error(finetuned.Predict, predict("mnli_text", text_a=[1], text_b=["y"])) \
        == (grpc.StatusCode.INVALID_ARGUMENT, "Expects arg[0] to be string but int32 is provided")
    assert rpc_error(finetuned.Predict, predict("nope", text=["x"])) == (
        grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.')
    assert rpc_error(finetuned.Predict, predict("sst_text", "electra", text=["x"])) == (
        grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(electra)")
    versioned = predict("sst_text", text=["x"])
    versioned.model_spec.version.value = 2
    assert rpc_error(finetuned.Predict, versioned)[1] == (
        "Servable not found for request: Specific(finetuned, 2)")
    assert rpc_error(finetuned.Predict, predict_pb2.PredictRequest())[1] == "Missing ModelSpec"


def test_the_warmup_records_are_answered(servers):
    """TF Serving replays them at load and fails the load on an error (its warm-up reads
    no model name, so the records' is set to the server's)."""
    calls = {"predict_log": "Predict", "classify_log": "Classify", "regress_log": "Regress"}
    for server in servers.values():
        logs = read_warmup_requests(server.export_dir)
        kinds = {log.WhichOneof("log_type") for log in logs}
        assert kinds == ({"predict_log", "classify_log", "regress_log"}
                         if server.model_name == "finetuned" else {"predict_log"})
        for log in logs:
            kind = log.WhichOneof("log_type")
            request = getattr(log, kind).request
            request.model_spec.name = server.model_name
            getattr(server, calls[kind])(request)


def test_graph_errors_keep_the_sessions_message(servers):
    request = predict("discriminator_ids", "electra", input_ids=[[101, 5000]],
                              input_mask=[[1, 1]], segment_ids=[[0, 0]])
    code, message = rpc_error(servers["electra"].Predict, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(
        "assertion failed: [input_ids[0, 1] = 5000 is outside [0, 1024) (vocab_size)]\n")
    assert "[Op:" not in message and "Graph execution error" not in message


def test_an_empty_batch(finetuned):
    empty = finetuned.Predict(predict("sst_text", text=np.array([], dtype=object)))
    assert tf.make_ndarray(empty.outputs["probabilities"]).shape == (0, 2)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "finetuned"
    request.model_spec.signature_name = "sst_classify"
    assert rpc_error(finetuned.Classify, request) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                      "Input is empty.")
    assert finetuned.rest("predict", {"signature_name": "sst_text", "instances": []}) == {
        "error": 'JSON Value: {\n    "signature_name": "sst_text",\n    "instances": []\n} '
                 "No values in 'instances' array"}
    assert finetuned.rest("regress", {"signature_name": "sts_regress", "examples": []}) == {
        "error": 'JSON Value: {\n    "signature_name": "sts_regress",\n    "examples": []\n} '
                 "'examples' value is an empty array"}


# --- Classify and Regress ----------------------------------------------------------------------

def test_classify_gives_the_text_signatures_probabilities_by_label(finetuned):
    text = finetuned.rest("predict", {"signature_name": "mnli_text", "inputs": PAIRS})["outputs"]
    examples = [{"text_a": a, "text_b": b} for a, b in zip(PAIRS["text_a"], PAIRS["text_b"])]
    results = finetuned.rest("classify", {"signature_name": "mnli_classify",
                                          "examples": examples})["results"]
    assert len(results) == 2
    for row, probabilities in zip(results, text["probabilities"]):
        assert [label for label, _ in row] == ["contradiction", "entailment", "neutral"]
        np.testing.assert_allclose([score for _, score in row], probabilities, atol=1e-6)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "finetuned"
    request.model_spec.signature_name = "mnli_classify"
    request.input.example_list.examples.add().ParseFromString(
        serialized_example(text_a=PAIRS["text_a"][0], text_b=PAIRS["text_b"][0]))
    response = finetuned.Classify(request)
    assert response.model_spec.signature_name == "mnli_classify"
    assert [c.label for c in response.result.classifications[0].classes] == [
        label for label, _ in results[0]]


def test_regress_gives_the_score(finetuned):
    score = finetuned.rest("predict", {"signature_name": "sts_text", "inputs": PAIRS})[
        "outputs"]["score"]
    examples = [{"text_a": a, "text_b": b} for a, b in zip(PAIRS["text_a"], PAIRS["text_b"])]
    results = finetuned.rest("regress", {"signature_name": "sts_regress",
                                         "examples": examples})["results"]
    np.testing.assert_allclose(results, score, atol=1e-6)
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "finetuned"
    request.model_spec.signature_name = "sts_regress"
    request.input.example_list.examples.add().ParseFromString(
        serialized_example(text_a=PAIRS["text_a"][1], text_b=PAIRS["text_b"][1]))
    # alone, not in a batch of two: float32 noise only
    assert finetuned.Regress(request).result.regressions[0].value == pytest.approx(score[1],
                                                                                   rel=1e-5)


def test_an_examples_own_feature_wins_over_the_context(finetuned):
    def classify(body):
        return finetuned.rest("classify", {"signature_name": "mnli_classify", **body})

    direct = classify({"examples": [{"text_a": "A man sleeps.", "text_b": "y"}]})
    shared = classify({"context": {"text_a": "A man sleeps.", "text_b": "overridden"},
                       "examples": [{"text_b": "y"}]})
    assert shared == direct and "results" in direct


def test_serialized_examples_put_the_context_first():
    request_input = input_pb2.Input()
    listed = request_input.example_list_with_context
    listed.context.CopyFrom(text_example(text_a="shared", text_b="context"))
    listed.examples.add().CopyFrom(text_example(text_b="own"))
    [serialized] = serialized_examples(request_input)
    feature = tf.train.Example.FromString(serialized).features.feature
    assert feature["text_a"].bytes_list.value == [b"shared"]
    assert feature["text_b"].bytes_list.value == [b"own"]
    assert serialized_examples(input_pb2.Input()) == []


def test_classify_and_regress_check_the_signatures_shape(finetuned):
    def error(verb, signature, example):
        return finetuned.rest(verb, {"signature_name": signature, "examples": [example]})

    assert error("classify", "mnli_text", {"text_a": "x"}) == {
        "error": "Expected one input Tensor."}
    assert error("classify", "sst_text", {"text": "x"}) == {
        "error": "Expected one or two output Tensors, found 8"}
    assert error("classify", "sts_regress", {"text_a": "x", "text_b": "y"})["error"].startswith(
        'Expected classification signature outputs to contain at least one of "classes" or '
        '"scores". Signature was: ')
    assert error("regress", "sst_classify", {"text": "x"}) == {
        "error": "Expected one output Tensor."}
    assert error("classify", "nope", {"text": "x"}) == {
        "error": "No signature was found with the name: nope"}


def test_the_method_name_check_is_off_by_default(finetuned):
    example = {"b64": base64.b64encode(serialized_example(text="dull")).decode()}
    assert "predictions" in finetuned.rest("predict", {"signature_name": "sst_classify",
                                                       "instances": [example]})
    assert finetuned.rest("regress", {"signature_name": "sst_classify",
                                      "examples": [{"text": "x"}]}) == {
        "error": "Expected one output Tensor."}  # off: the shape is checked, not the name
    strict = LocalModelServer(finetuned.export_dir, "finetuned",
                              enable_signature_method_name_check=True)
    assert strict.rest("regress", {"signature_name": "sst_classify",
                                   "examples": [{"text": "x"}]}) == {
        "error": "Expected regression signature method_name to be tensorflow/serving/regress. "
                 "Was: tensorflow/serving/classify"}
    assert "results" in strict.rest("classify", {"signature_name": "sst_classify",
                                                 "examples": [{"text": "x"}]})
    assert "predictions" in strict.rest("predict", {"signature_name": "sst_classify",
                                                    "instances": [example]})


# --- JSON details (rest_json) ------------------------------------------------------------

def test_json_debug_string_is_rapidjsons_pretty_writer():
    value = {"a": [1, 2.5, "x"], "b": {"c": None, "d": {}}, "e": []}
    assert rest_json.json_debug_string(value) == (
        '{\n    "a": [1, 2.5, "x"],\n    "b": {\n        "c": null,\n        "d": {}\n    },\n'
        '    "e": []\n}')
    long = rest_json.json_debug_string({"instances": ["word"] * 100})
    assert long.startswith('{\n    "instances": ["word", "word"') and long.endswith('"word"')
    assert 256 <= len(long) < 256 + len(', "word"')


def test_example_features_from_json():
    example = rest_json.example_from_json(
        {"s": "é", "b": {"b64": "aGk="}, "i": [1, True], "f": 0.5})
    feature = example.features.feature
    assert feature["s"].bytes_list.value == ["é".encode()]
    assert feature["b"].bytes_list.value == [b"hi"]
    assert feature["i"].int64_list.value == [1, 1]
    assert feature["f"].float_list.value == [0.5]
    with pytest.raises(rest_json.JsonError, match="expecting type: int64"):
        rest_json.example_from_json({"i": [1, "x"]})
    with pytest.raises(rest_json.JsonError, match="unexpected JSON type: Null"):
        rest_json.example_from_json({"n": None})


def test_float32_is_written_with_six_digits_or_else_nine():
    assert rest_json._float32_json(np.float32(0.2)) == 0.2
    assert rest_json._float32_json(np.float32(1 / 3)) == 0.333333343
    assert rest_json._float32_json(np.float32(1e-7)) == 1e-07
