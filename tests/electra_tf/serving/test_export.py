"""SavedModel export for TF Serving, checked the way a server loads it.

One export of the tiny fixture model (converted into a model directory) is shared by the
module. `export_check.py` loads it in a fresh Python that imports only TensorFlow and
tensorflow-text and calls every signature; here the results are compared with our
tokenizer and the Keras models.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints, models as modeling
from electra_tf.config import PretrainingConfig
from electra_tf.models.encoder import INPUT_NAMES
from electra_tf.serving import endpoints as endpoints_lib, export as export_lib, warmup
from electra_tf.serving.text_encoder import TextEncoder, pair_lengths
from pretrain_data import tokenization
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES, REPO
from tests.electra_tf.models.test_models import TINY, _round_trip as keras_round_trip
from tests.electra_tf.serving import export_check

VOCAB = str(FIXTURES / "vocab_tiny.txt")
OPS_FIXTURE = FIXTURES / "serving_ops.json"
MAX_SEQ_LENGTH = 32  # the tiny fixture's
LONG = " ".join(["encyclopedia"] * 40)
TEXTS = ["Hello, World!", "", "Café naïve ÅNGSTRÖM 東京 ß", LONG, "a b"]
PAIRS = [(LONG, "short one"), ("short", LONG), (LONG, LONG), ("", "x"), ("a b c", "d e")]
MASKED = ["the [MASK] sat on the [MASK].", "[MASK]", "no mask here"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_config, tiny_prefix):
    data_dir = tmp_path_factory.mktemp("data")
    shutil.copy(VOCAB, data_dir / "vocab.txt")
    directory = str(data_dir / "models" / "tiny")
    checkpoints.convert_from_original(tiny_prefix, directory, tiny_config)
    return directory


@pytest.fixture(scope="module")
def exported(model_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("export")
    return export_lib.export_saved_model(model_dir, str(base), top_k=5)


@pytest.fixture(scope="module")
def keras_models(model_dir):
    return checkpoints.load_model_dir(model_dir)


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(VOCAB)


def truncate_pair(a, b, budget):
    """BERT's `_truncate_seq_pair`, literally: pop from the longer side, ties from b."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        (a if len(a) > len(b) else b).pop()
    return a, b


def featurize(tokenizer, text_a, text_b=None, masked=False):
    """[CLS] a [SEP] (b [SEP]) ids and segments in plain Python."""
    def ids(text):
        if not masked:
            return tokenizer.tokenize_to_id_lists([text])[0]
        parts = [tokenizer.tokenize_to_id_lists([p])[0] for p in text.split("[MASK]")]
        return sum((p + [103] for p in parts[:-1]), []) + parts[-1]

    a = ids(text_a)
    if text_b is None:
        return [101] + a[:MAX_SEQ_LENGTH - 2] + [102], [0] * (len(a[:MAX_SEQ_LENGTH - 2]) + 2)
    a, b = truncate_pair(a, ids(text_b), MAX_SEQ_LENGTH - 3)
    return [101] + a + [102] + b + [102], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def batch(rows):
    """Padded int32 features from (ids, segments) rows."""
    width = max(len(ids) for ids, _ in rows)
    out = {k: np.zeros((len(rows), width), np.int32) for k in INPUT_NAMES}
    for i, (ids, segments) in enumerate(rows):
        out["input_ids"][i, :len(ids)] = ids
        out["input_mask"][i, :len(ids)] = 1
        out["segment_ids"][i, :len(ids)] = segments
    return out


@pytest.fixture(scope="module")
def expected_features(tokenizer):
    return {"text": batch([featurize(tokenizer, t) for t in TEXTS]),
            "pair": batch([featurize(tokenizer, a, b) for a, b in PAIRS]),
            "masked": batch([featurize(tokenizer, t, masked=True) for t in MASKED])}


@pytest.fixture(scope="module")
def served(exported, expected_features, tmp_path_factory):
    """Every signature called in a fresh process; {call name: {output: array}}."""
    def ids_call(name, kind):
        return {"signature": name, "inputs": {k: v.tolist() for k, v in
                                              expected_features[kind].items()}}

    calls = {
        "default": {"signature": "serving_default", "inputs": {"text": TEXTS}},
        "text": {"signature": "discriminator_text", "inputs": {"text": TEXTS}},
        "ids": ids_call("discriminator_ids", "text"),
        "pair": {"signature": "discriminator_pair",
                 "inputs": {"text_a": [a for a, _ in PAIRS], "text_b": [b for _, b in PAIRS]}},
        "pair_ids": ids_call("discriminator_ids", "pair"),
        "gen_text": {"signature": "generator_text", "inputs": {"text": MASKED}},
        "gen_ids": ids_call("generator_ids", "masked"),
        "examples": {"signature": "discriminator_examples",
                     "inputs": {"inputs": {"examples": [{"text": t} for t in TEXTS]}}},
        "gen_examples": {"signature": "generator_examples",
                         "inputs": {"inputs": {"examples": [{"text": t} for t in MASKED]}}},
    }
    return call_in_fresh_process(exported, calls, tmp_path_factory.mktemp("check"))


def call_in_fresh_process(exported, calls, work):
    """Runs `export_check.py` on `calls` ({call name: {"signature", "inputs"}}).

    Returns:
        {call name: {output: array}}, and "process": everything the script wrote.
    """
    (work / "calls.json").write_text(json.dumps(list(calls.values())))
    result = subprocess.run(
        [sys.executable, export_check.__file__, exported, str(work / "calls.json"),
         str(work / "out.npz")], capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = dict(np.load(work / "out.npz"))
    served = {name: {key.split("/", 1)[1]: value for key, value in out.items()
                     if key.startswith(f"{i}/")} for i, name in enumerate(calls)}
    served["process"] = out
    return served


def test_fresh_process_imports_only_tensorflow(served):
    modules = set(served["process"]["modules"])
    assert {"tensorflow", "tensorflow_text"} <= modules
    assert not modules & {"electra_tf", "pretrain_data", "finetune", "tests"}


def test_layout_version_and_assets(exported):
    base = os.path.dirname(exported)
    assert os.listdir(base) == ["1"]  # no temporary directory left
    assert sorted(os.listdir(exported)) == ["assets", "assets.extra", "fingerprint.pb",
                                            "saved_model.pb", "variables"]
    assert (pathlib.Path(exported, "assets", "vocab.txt").read_bytes()
            == pathlib.Path(VOCAB).read_bytes())


def test_raw_text_is_tokenised_as_training(served, expected_features, tokenizer):
    for call, kind in (("text", "text"), ("pair", "pair"), ("gen_text", "masked")):
        for key, value in expected_features[kind].items():
            np.testing.assert_array_equal(served[call][key], value, err_msg=f"{call} {key}")
    ids = expected_features["text"]["input_ids"]
    tokens = served["text"]["tokens"]
    assert tokens[0, :9].tolist() == ["[CLS]"] + tokenizer.tokenize(TEXTS[0]) + ["[SEP]"]
    assert tokens[1, :3].tolist() == ["[CLS]", "[SEP]", "[PAD]"]  # the empty string
    assert tokens.tolist() == [[tokenizer.inv_vocab[i] for i in row] for row in ids.tolist()]
    # Truncation: the long text fills max_seq_length exactly; the batch is padded to it.
    assert served["text"]["input_ids"].shape == (len(TEXTS), MAX_SEQ_LENGTH)
    assert served["text"]["input_mask"].sum(axis=1).tolist()[3] == MAX_SEQ_LENGTH
    pair_lengths = served["pair"]["input_mask"].sum(axis=1).tolist()
    assert pair_lengths[:3] == [MAX_SEQ_LENGTH] * 3


def test_raw_text_signature_equals_ids_signature(served):
    for text_call, ids_call in (("text", "ids"), ("pair", "pair_ids"), ("gen_text", "gen_ids")):
        for key, value in served[ids_call].items():
            if value.dtype.kind == "U":
                np.testing.assert_array_equal(served[text_call][key], value, err_msg=key)
            else:
                np.testing.assert_allclose(served[text_call][key], value, atol=1e-6,
                                           err_msg=f"{text_call} {key}")
    for key, value in served["text"].items():
        np.testing.assert_array_equal(served["default"][key], value, err_msg=key)


@pytest.mark.parametrize("examples,text", [("examples", "text"), ("gen_examples", "gen_text")])
def test_examples_signature_equals_text_signature(served, examples, text):
    assert sorted(served[examples]) == sorted(served[text])
    for key, value in served[text].items():
        np.testing.assert_array_equal(served[examples][key], value, err_msg=key)


def test_discriminator_outputs_equal_keras(served, expected_features, keras_models):
    for call, kind in (("ids", "text"), ("pair_ids", "pair")):
        expected = keras_models.discriminator(expected_features[kind])
        for key in ("logits", "sequence_output", "pooled_output"):
            np.testing.assert_allclose(served[call][key], expected[key], atol=1e-5,
                                       err_msg=f"{call} {key}")
        np.testing.assert_allclose(served[call]["replaced_probability"],
                                   tf.sigmoid(expected["logits"]), atol=1e-5)
        assert served[call]["logits"].dtype == np.float32


def test_generator_predictions_equal_keras(served, expected_features, keras_models):
    features = expected_features["masked"]
    out = served["gen_ids"]
    mask_rows, mask_cols = np.nonzero(features["input_ids"] == 103)
    assert out["masked_lm_weights"].tolist() == [[1, 1], [1, 0], [0, 0]]
    assert out["masked_lm_positions"][mask_rows, [0, 1, 0]].tolist() == mask_cols.tolist()
    probs = tf.nn.softmax(keras_models.generator(features)["logits"]).numpy()
    at_masks = probs[mask_rows, mask_cols]  # [masks, V]
    top = np.argsort(-at_masks, axis=-1)[:, :5]
    slots = (mask_rows, [0, 1, 0])
    np.testing.assert_array_equal(out["top_k_ids"][slots], top)
    np.testing.assert_allclose(out["top_k_probabilities"][slots],
                               np.take_along_axis(at_masks, top, -1), atol=1e-5)
    tokens = FullTokenizer(VOCAB).inv_vocab
    assert out["top_k_tokens"][slots].tolist() == [[tokens[i] for i in row] for row in top]


def test_warmup_records_parse_as_prediction_logs(exported, served):
    requests = export_check.read_warmup(exported)
    signatures = {name for name, _ in requests}
    assert signatures == {"serving_default", "discriminator_text", "discriminator_pair",
                          "discriminator_ids", "discriminator_examples", "generator_text",
                          "generator_ids", "generator_examples"}
    inputs = dict(requests)
    assert inputs["discriminator_pair"]["text_a"].dtype == object
    assert inputs["discriminator_ids"]["input_ids"].dtype == np.int32
    assert inputs["discriminator_ids"]["input_ids"][0, 0] == 101
    assert b"[MASK]" in inputs["generator_text"]["text"][0]
    example = tf.train.Example.FromString(inputs["discriminator_examples"]["inputs"][0])
    assert example.features.feature["text"].bytes_list.value == [
        inputs["discriminator_text"]["text"][0]]
    # and the fresh process replayed every record against the loaded model
    assert sorted(served["process"]["warmup_signatures"]) == sorted(signatures)
    logs = warmup.read_warmup_requests(exported)  # the library reads them the same way
    assert all(log.WhichOneof("log_type") == "predict_log" for log in logs)
    ours = [warmup.request_inputs(log) for log in logs]
    assert [name for name, _ in ours] == [name for name, _ in requests]
    for (_, mine), (_, theirs) in zip(ours, requests):
        assert mine.keys() == theirs.keys()
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key])


def test_predict_request_holds_the_tensors():
    request = warmup.predict_request("sig", {"x": np.arange(300, dtype=np.int32).reshape(3, 100)})
    assert request.model_spec.signature_name == "sig"
    np.testing.assert_array_equal(tf.make_ndarray(request.inputs["x"]),
                                  np.arange(300).reshape(3, 100))
    with pytest.raises(ValueError, match="kind None"):
        warmup.request_inputs(warmup.prediction_log_pb2.PredictionLog())


def test_op_types_are_the_recorded_serving_ops(exported):
    assert_recorded_ops(exported, "pretraining")


def assert_recorded_ops(exported, kind):
    """The export's op types are exactly `serving_ops.json[kind]`, all served by TF Serving."""
    ops = export_check.op_types(exported)
    recorded = json.loads(OPS_FIXTURE.read_text())[kind]
    new = sorted(set(ops) - set(recorded))
    assert not new, (
        f"the export has new op types {new}. TF Serving's standard model server must "
        f"register them (TF core, or tensorflow_text:ops_lib, see TF_TEXT_SERVING_OPS in "
        f"tests/electra_tf/serving/export_check.py); after checking, add them to "
        f"{OPS_FIXTURE} and to the op list of docs/serving.md")
    assert ops == recorded, f"op types no longer used: {sorted(set(recorded) - set(ops))}"
    not_core = [op for op in ops if not hasattr(tf.raw_ops, op)]
    assert not_core == sorted(export_check.TF_TEXT_SERVING_OPS)


# ------------------------------------------------------------------ request validation


@pytest.fixture(scope="module")
def reloaded(exported):
    """The export loaded back in this process."""
    return tf.saved_model.load(exported)


def with_value(features, name, value, at=(1, 2)):
    """A copy of `features` with `features[name][at]` set to `value`."""
    features = {k: np.array(v) for k, v in features.items()}
    features[name][at] = value
    return features


# (input, bad value, the message: the input, where, the value and the valid range)
OUT_OF_RANGE = [
    ("input_ids", -1, r"input_ids\[1, 2\] = -1 is outside \[0, 1024\) \(vocab_size\)"),
    ("input_ids", 1024, r"input_ids\[1, 2\] = 1024 is outside \[0, 1024\) \(vocab_size\)"),
    ("segment_ids", 2,
     r"segment_ids\[1, 2\] = 2 is outside \[0, 2\) \(type_vocab_size\)"),
]


@pytest.mark.parametrize("signature", ["discriminator_ids", "generator_ids"])
@pytest.mark.parametrize("name,value,message", OUT_OF_RANGE)
def test_ids_outside_the_embedding_tables_are_rejected(reloaded, expected_features, signature,
                                                       name, value, message):
    # -1 used to wrap round to id V-1 silently; V and segment 2 failed deep in a gather.
    bad = with_value(expected_features["masked"], name, value)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        reloaded.signatures[signature](**bad)


def test_valid_ids_give_the_networks_outputs_unchanged(reloaded, expected_features,
                                                      keras_models):
    # the edges of both ranges are valid
    features = with_value(with_value(expected_features["text"], "input_ids", 1023),
                          "segment_ids", 1, at=(0, 3))
    text_encoder = TextEncoder(VOCAB, MAX_SEQ_LENGTH)
    endpoints = export_lib.pretrained_endpoints(keras_models, text_encoder, top_k=5)
    direct = {e.name: tf.function(e.outputs, autograph=False)(features) for e in endpoints}
    for name, expected in direct.items():
        served = reloaded.signatures[f"{name}_ids"](**features)
        assert sorted(served) == sorted(expected)
        for key, value in expected.items():
            if value.dtype.is_floating:  # another graph: float sums may differ in the last bit
                np.testing.assert_allclose(served[key], value, atol=1e-5, err_msg=key)
            else:
                np.testing.assert_array_equal(served[key], value, err_msg=f"{name} {key}")


def tensors(inputs):
    """{input: ndarray} → {input: tensor}, strings (also of an empty array) as tf.string."""
    return {k: tf.constant(v, tf.string if v.dtype == object else None)
            for k, v in inputs.items()}


def empty_requests(exported):
    """{signature: an empty batch of its warm-up request} (ids: also [0, 0])."""
    requests = {}
    for signature, inputs in map(warmup.request_inputs, warmup.read_warmup_requests(exported)):
        requests[signature] = {k: v[:0] for k, v in inputs.items()}
        if next(iter(inputs.values())).dtype == np.int32:
            requests[f"{signature} [0, 0]"] = {k: v[:0, :0] for k, v in inputs.items()}
    return requests


def assert_empty_batches_work(exported, model, fixed_dims):
    """Every signature answers an empty batch with empty outputs, typed and ranked as its
    answer to the warm-up request.

    Args:
        fixed_dims: {output: its shape after the batch dimension, None where it varies}.
    Returns:
        {request name: {output: tensor}}.
    """
    warm = {name: model.signatures[name](**tensors(inputs)) for name, inputs in
            map(warmup.request_inputs, warmup.read_warmup_requests(exported))}
    answers = {}
    for request, inputs in empty_requests(exported).items():
        expected = warm[request.split()[0]]
        out = model.signatures[request.split()[0]](**tensors(inputs))
        assert sorted(out) == sorted(expected), request
        for key, value in out.items():
            assert value.dtype == expected[key].dtype, (request, key)
            assert value.shape.rank == expected[key].shape.rank, (request, key)
            assert value.shape[0] == 0, (request, key, value.shape)
            want = fixed_dims.get(key, (None,) * (value.shape.rank - 1))
            assert all(w in (None, d) for d, w in zip(value.shape[1:], want, strict=True)), (
                request, key, value.shape)
        answers[request] = out
    return answers


def test_an_empty_batch_gives_empty_outputs(exported, reloaded):
    answers = assert_empty_batches_work(exported, reloaded, {
        "sequence_output": (None, 64), "pooled_output": (64,),
        "top_k_ids": (None, 5), "top_k_tokens": (None, 5), "top_k_probabilities": (None, 5)})
    assert {"discriminator_text", "discriminator_pair", "generator_text",
            "discriminator_ids [0, 0]", "generator_ids"} <= set(answers)
    # per token outputs are as wide as the features the text signature returns
    text = answers["discriminator_text"]
    assert text["logits"].shape[1] == text["input_ids"].shape[1] == text["tokens"].shape[1]
    width = empty_requests(exported)["discriminator_ids"]["input_ids"].shape[1]
    assert answers["discriminator_ids"]["logits"].shape == (0, width)


def run(*args):
    result = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_saved_model_cli_show_and_run(exported):
    cli = shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
    shown = run(cli, "show", "--dir", exported, "--all")
    for name in ("serving_default", "discriminator_pair", "discriminator_ids",
                 "generator_text", "generator_ids"):
        assert f"signature_def['{name}']" in shown
    assert "inputs['text_b'] tensor_info:" in shown
    # `run` executes the graph: plain saved_model_cli does not know tensorflow-text's ops
    args = ("run", "--dir", exported, "--tag_set", "serve", "--signature_def",
            "serving_default", "--input_exprs", 'text=["hello world"]')
    plain = subprocess.run([cli, *args], capture_output=True, text=True, env=ENV, timeout=300)
    assert plain.returncode != 0 and "Op type not registered" in plain.stderr
    # electra_tf.saved_model_cli is the same tool with them registered (the model server
    # links them in)
    ran = run(sys.executable, "-m", "electra_tf.saved_model_cli", *args)
    assert "Result for output key replaced_probability" in ran
    assert "[[b'[CLS]' b'he' b'##l' b'##l' b'##o' b'world' b'[SEP]']]" in ran
    ran = run(sys.executable, "-m", "electra_tf.saved_model_cli", "run", "--dir", exported,
              "--tag_set", "serve", "--signature_def", "discriminator_examples",
              "--input_examples", 'inputs=[{"text":["hello world"]}]')
    assert "[[b'[CLS]' b'he' b'##l' b'##l' b'##o' b'world' b'[SEP]']]" in ran


def test_versions_are_never_overwritten(model_dir, exported, tmp_path, monkeypatch):
    base = os.path.dirname(exported)
    assert export_lib.next_version(base) == 2
    with pytest.raises(FileExistsError, match=r"/1: version 1 exists already.* use 2"):
        export_lib.export_saved_model(model_dir, base, version=1)
    (tmp_path / "7").mkdir()
    (tmp_path / "10").mkdir()
    (tmp_path / "x12").mkdir()
    assert export_lib.next_version(str(tmp_path)) == 11
    assert export_lib.next_version(str(tmp_path / "none")) == 1
    with pytest.raises(ValueError, match="positive integer"):
        export_lib.export_saved_model(model_dir, str(tmp_path), version=0)


def test_a_failed_export_leaves_nothing(model_dir, tmp_path, monkeypatch):
    def broken_save(module, path, signatures):
        pathlib.Path(path).mkdir(parents=True, exist_ok=True)  # as tf.saved_model.save does
        pathlib.Path(path, "saved_model.pb").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(export_lib, "pretrained_module",
                        lambda *args, **kwargs: types.SimpleNamespace(signatures={}))
    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        export_lib.export_saved_model(model_dir, str(tmp_path / "base"))
    assert os.listdir(tmp_path / "base") == []
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        export_lib.export_saved_model(str(tmp_path), str(tmp_path / "base"))
    # What a killed export left is removed by the next one.
    (tmp_path / "base" / ".tmp-1-0123abcd").mkdir()
    monkeypatch.undo()
    assert export_lib.export_saved_model(model_dir, str(tmp_path / "base")).endswith("/1")
    assert os.listdir(tmp_path / "base") == ["1"]


def test_cli_error_names_the_existing_version(model_dir, exported):
    result = subprocess.run(
        [sys.executable, "-m", "electra_tf.export_saved_model", "--model-dir", model_dir,
         "--output", os.path.dirname(exported), "--version", "1"],
        capture_output=True, text=True, env=ENV, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(
        f"error: {exported}: version 1 exists already; choose another --version or leave "
        f"it out to use 2")


def test_vocabulary_lookup_and_size_check(model_dir, tmp_path, tiny_config):
    config = checkpoints.build_from_model_dir(model_dir)[0]
    data_dir = os.path.dirname(os.path.dirname(model_dir))
    assert export_lib.find_vocab(model_dir, config) == os.path.join(data_dir, "vocab.txt")
    with pytest.raises(FileNotFoundError, match="no vocabulary found"):
        export_lib.find_vocab(str(tmp_path), PretrainingConfig("m", str(tmp_path)))
    small = tmp_path / "vocab.txt"
    small.write_text("".join(line for line in open(VOCAB).readlines()[:500]))
    with pytest.raises(ValueError, match=r"has 500 tokens but vocab_size is 1024"):
        tokenization.check_vocab(str(small), config.vocab_size)


@pytest.mark.parametrize("len_a", range(0, 9))
def test_pair_lengths_is_bert_truncate_seq_pair(len_a):
    for budget in range(0, 9):
        len_b = np.arange(0, 12)
        keep_a, keep_b = pair_lengths(tf.constant([len_a] * 12, tf.int64),
                                              tf.constant(len_b), budget)
        expected = [tuple(map(len, truncate_pair(range(len_a), range(b), budget)))
                    for b in len_b]
        assert list(zip(keep_a.numpy().tolist(), keep_b.numpy().tolist())) == expected


# ------------------------------------------------------------------ .keras files
# test_modeling covers the default generator/discriminator/encoder and Electric; these are
# the remaining pretraining variants.


def _features(vocab):
    ids = np.array([[101, 7, 9, 102, 0], [101, 3, 102, 4, 102]], np.int32) % vocab
    return {"input_ids": ids, "input_mask": (ids > 0).astype(np.int32),
            "segment_ids": np.array([[0] * 5, [0, 0, 0, 1, 1]], np.int32)}


@pytest.mark.parametrize("hparams", [
    {"untied_generator_embeddings": True}, {"untied_generator": False},
    {"electra_objective": False},
    {"precision": "mixed_bfloat16"}])
def test_keras_files_of_pretraining_variants(hparams, tmp_path):
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY, **hparams))
    for name in ("generator", "discriminator", "encoder"):
        model = getattr(models, name)
        if model is not None:
            restored = keras_round_trip(model, tmp_path, _features(101))
            assert restored.dtype_policy.name == model.dtype_policy.name



# ------------------------------------------------------------------ endpoints, eagerly


@pytest.mark.parametrize("hparams", [{}, {"electric_objective": True,
                                          "electra_objective": False}])
def test_generator_endpoint_equals_keras(hparams):
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY, **hparams))
    features = _features(101)
    features["input_ids"][0, 2] = features["input_ids"][1, 1] = 50  # the [MASK] id here
    text_encoder = types.SimpleNamespace(mask_id=50, tokens=tf.strings.as_string)
    endpoint = endpoints_lib.generator_endpoint(models.generator, text_encoder, 3)
    out = endpoint.outputs(features)
    assert out["masked_lm_positions"].numpy().tolist() == [[2], [1]]
    probs = tf.nn.softmax(models.generator(features)["logits"]).numpy()[[0, 1], [2, 1]]
    top = np.argsort(-probs, axis=-1)[:, :3]
    np.testing.assert_array_equal(out["top_k_ids"][:, 0], top)
    np.testing.assert_allclose(out["top_k_probabilities"][:, 0],
                               np.take_along_axis(probs, top, -1), atol=1e-6)
    assert out["top_k_tokens"][0, 0, 0].numpy() == str(top[0, 0]).encode()


def test_encoder_endpoint_gives_features():
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY),
                                   discriminator_head=False)
    features = _features(101)
    out = endpoints_lib.encoder_endpoint(models.encoder, None).outputs(features)
    expected = models.encoder(features)
    assert sorted(out) == ["pooled_output", "sequence_output"]
    np.testing.assert_allclose(out["sequence_output"], expected["sequence_output"], atol=1e-6)


@pytest.mark.parametrize("hparams,components,names", [
    ({}, {}, ["discriminator", "generator"]),
    ({}, {"generator": False}, ["discriminator"]),
    ({}, {"generator": False, "discriminator_head": False}, ["encoder"]),
    ({"electra_objective": False}, {}, ["generator"]),  # BERT: serving_default = generator
])
def test_endpoints_follow_the_model_directory(hparams, components, names):
    config = PretrainingConfig("m", "d", **dict(TINY, vocab_size=1024, **hparams))
    models = modeling.build_models(config, **components)
    loaded = checkpoints.OriginalCheckpoint(config, models.generator, models.discriminator,
                                            models.encoder, None, {}, [])
    endpoints = export_lib.pretrained_endpoints(loaded, None)
    assert [e.name for e in endpoints] == names
