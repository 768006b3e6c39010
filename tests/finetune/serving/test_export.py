"""SavedModel export of fine-tuned models, checked the way a server loads it.

One randomly initialised model directory holding five tasks (MNLI: pair classification,
SST: single-sentence classification, STS: regression, chunking: tagging, SQuAD 2.0: QA) is
exported once. `tests/electra_tf/serving/export_check.py` calls every signature in a fresh
Python that imports only TensorFlow and tensorflow-text; here the results are compared with
our Python featurisation (`task.featurize`), the Keras model, and the Python QA decoder
(`finetune.qa.decoding`). Random weights give arbitrary answers, which the served graph
must still decode exactly as the Python decoder does; a QA model trained a little checks the
same against what `run_finetuning` itself decoded. Also: `.keras` files of fine-tuned
models.
"""

import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.serving import export as export_lib
from finetune import model_dir, synthetic, trials
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model, dummy_features
from finetune.qa import decoding
from finetune.tasks import Example
from finetune.tasks.qa_examples import QAExample, split_doc
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES
from tests.electra_tf.serving import export_check
from tests.electra_tf.serving.test_export import (
    OUT_OF_RANGE, assert_empty_batches_work, assert_recorded_ops, call_in_fresh_process,
    with_value)

S = 48
TASKS = ["mnli", "sst", "sts", "chunk", "squad"]
TINY = {"init_checkpoint": None, "vocab_size": 1024, "embedding_size": 32,
        "model_hparam_overrides": {"hidden_size": 32, "intermediate_size": 64,
                                   "num_attention_heads": 2, "num_hidden_layers": 1},
        "max_seq_length": S, "max_query_length": 6, "seed": 3}
LONG = " ".join(["encyclopedia"] * 30)
TEXTS = ["Hello, World!", "", "Café naïve ÅNGSTRÖM 東京 ß", LONG, "a b"]
PAIRS = [(LONG, "short one"), ("short", LONG), ("", "x"), ("the cat sat", "Le chat, assis.")]
SENTENCES = ["The cat sat on the mat .", "Café  naïve\tÅNGSTRÖM (東京) ,", "",
             " ".join(["word"] * 20), " ".join(["encyclopedia"] * 8), "a " * 50]


def qa_inputs(rng):
    """Questions and single-window contexts with punctuation, accents and odd spacing, so
    that spans start and end inside words; then one context that needs a second window."""
    words = ("the city of Café naïve (river) king's water, music-school 東京 Straße "
             "encyclopedia up-to-date x.y.z 1,000").split()
    questions, contexts = [], []
    for i in range(40):
        picked = rng.choice(words, rng.randint(1, 9))
        contexts.append(("  " if i % 7 == 0 else "").join(
            w + rng.choice([" ", "  ", "\t"]) for w in picked).strip())
        questions.append(" ".join(rng.choice(words, rng.randint(1, 9))))
    questions.append("where is the king ?")
    contexts.append(" ".join(["encyclopedia river"] * 12))
    return questions, contexts


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    shutil.copy(FIXTURES / "vocab_tiny.txt", data_dir / "vocab.txt")
    chunk = data_dir / "finetuning_data" / "chunk"
    chunk.mkdir(parents=True)
    (chunk / "train.txt").write_text("the DT B-NP\ncat NN I-NP\nsat VBD B-VP\n. . O\n\n")
    config = FinetuningConfig("m", str(data_dir), task_names=TASKS, **TINY)
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file))
    model = build_finetuning_model(config, tasks)
    directory = model_dir.save(str(data_dir / "ft_model_1"), config, model, tasks)
    return model_dir.load(directory)


@pytest.fixture(scope="module")
def exported(finetuned, tmp_path_factory):
    directory = os.path.dirname(finetuned.vocab_file)
    return export_lib.export_saved_model(directory, str(tmp_path_factory.mktemp("export")))


@pytest.fixture(scope="module")
def task(finetuned):
    return {t.name: t for t in finetuned.tasks}


@pytest.fixture(scope="module")
def python_features(task):
    """Our Python featurisation of every input, {call: features [N, S]}."""
    questions, contexts = qa_inputs(np.random.RandomState(0))
    qa_examples = [QAExample(i, "squad", str(i), q, split_doc(c)[0])
                   for i, (q, c) in enumerate(zip(questions, contexts))]

    def glue(name, pairs):
        label = task[name].label_list[0] if name != "sts" else 0.0
        return task[name].featurize([Example(i, name, a, b, label)
                                     for i, (a, b) in enumerate(pairs)])

    windows = task["squad"].featurize(qa_examples, False)  # the last example has several
    first = windows["squad_eid"] % 1000 == 0
    return {"mnli": glue("mnli", PAIRS), "sst": glue("sst", [(t, None) for t in TEXTS]),
            "sts": glue("sts", PAIRS),
            "chunk": task["chunk"].featurize([Example(i, "chunk", s.split(), None,
                                                      [0] * len(s.split()))
                                              for i, s in enumerate(SENTENCES)]),
            "squad": {k: v[first] for k, v in windows.items()}, "squad_windows": windows,
            "qa_inputs": (questions, contexts), "qa_examples": qa_examples}


@pytest.fixture(scope="module")
def served(exported, python_features, tmp_path_factory):
    """Every signature called in a fresh process; {call name: {output: array}}."""
    questions, contexts = python_features["qa_inputs"]
    ids_inputs = {name: {k: python_features[name][k].tolist()
                         for k in ("input_ids", "input_mask", "segment_ids")}
                  for name in ("mnli", "sst", "sts", "chunk", "squad")}
    pair_inputs = {"text_a": [a for a, _ in PAIRS], "text_b": [b for _, b in PAIRS]}
    calls = {
        "default": ("serving_default", pair_inputs),
        "mnli_text": ("mnli_text", pair_inputs),
        "sst_text": ("sst_text", {"text": TEXTS}),
        "sts_text": ("sts_text", pair_inputs),
        "chunk_text": ("chunk_text", {"text": SENTENCES}),
        "squad_text": ("squad_text", {"question": questions, "context": contexts}),
        **{f"{name}_ids": (f"{name}_ids", inputs) for name, inputs in ids_inputs.items()},
    }
    for name, (_, inputs) in list(calls.items()):  # the same texts as serialized tf.Examples
        task_name = name.split("_")[0]
        if name.endswith("_text"):
            examples = {"inputs": {"examples": [dict(zip(inputs, row))
                                                for row in zip(*inputs.values())]}}
            api = {"mnli": "classify", "sst": "classify", "sts": "regress"}.get(task_name)
            for kind in ["examples"] + [api] * bool(api):
                calls[f"{task_name}_{kind}"] = (f"{task_name}_{kind}", examples)
    return call_in_fresh_process(
        exported, {name: {"signature": signature, "inputs": inputs}
                   for name, (signature, inputs) in calls.items()},
        tmp_path_factory.mktemp("check"))


@pytest.fixture(scope="module")
def keras_outputs(finetuned, python_features):
    """The Keras model on our Python features, {task: its head's outputs} (SQuAD: on each
    example's first window; "squad_windows": on every window)."""
    out = {}
    for name in ("mnli", "sst", "sts", "chunk", "squad", "squad_windows"):
        features = python_features[name]
        n = len(features["input_ids"])
        full = {**dummy_features(finetuned.tasks, n, S), **features}
        out[name] = {k: np.asarray(v) for k, v in
                     finetuned.model(full, training=False)[name.split("_")[0]].items()}
    return out


def test_fresh_process_and_signatures(served, exported):
    modules = set(served["process"]["modules"])
    assert not modules & {"electra_tf", "pretrain_data", "finetune", "tests"}
    signatures = {name for name, _ in export_check.read_warmup(exported)}
    assert signatures == {"serving_default", "mnli_classify", "sst_classify",
                          "sts_regress"} | {f"{t}_{k}" for t in TASKS
                                            for k in ("text", "ids", "examples")}
    # every warm-up record was replayed against the loaded model
    assert sorted(served["process"]["warmup_signatures"]) == sorted(signatures)
    inputs = dict(export_check.read_warmup(exported))
    assert sorted(inputs["squad_text"]) == ["context", "question"]
    assert sorted(inputs["mnli_text"]) == ["text_a", "text_b"]
    for key, value in served["mnli_text"].items():
        np.testing.assert_array_equal(served["default"][key], value, err_msg=key)


@pytest.mark.parametrize("name", TASKS)
def test_examples_signature_equals_text_signature(served, name):
    text, examples = served[f"{name}_text"], served[f"{name}_examples"]
    assert sorted(examples) == sorted(text)
    for key, value in text.items():
        np.testing.assert_array_equal(examples[key], value, err_msg=key)


@pytest.mark.parametrize("name", ["mnli", "sst"])
def test_classify_signature_gives_label_names_and_probabilities(served, task, name):
    out, text = served[f"{name}_classify"], served[f"{name}_text"]
    assert sorted(out) == ["classes", "scores"]
    assert out["classes"].tolist() == [task[name].label_list] * len(text["label"])
    np.testing.assert_array_equal(out["scores"], text["probabilities"])
    best = out["classes"][np.arange(len(out["scores"])), out["scores"].argmax(-1)]
    assert best.tolist() == text["label"].tolist()


def test_regress_signature_gives_the_score(served):
    assert sorted(served["sts_regress"]) == ["outputs"]
    np.testing.assert_array_equal(served["sts_regress"]["outputs"], served["sts_text"]["score"])


def test_method_names_and_fingerprint(exported):
    from tensorflow.core.protobuf import saved_model_pb2  # noqa: PLC0415

    with open(os.path.join(exported, "saved_model.pb"), "rb") as f:
        (meta_graph,) = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs
    methods = {k: v.method_name for k, v in meta_graph.signature_def.items()
               if not k.startswith("__")}
    assert methods.pop("mnli_classify") == methods.pop("sst_classify") == (
        "tensorflow/serving/classify")
    assert methods.pop("sts_regress") == "tensorflow/serving/regress"
    assert set(methods.values()) == {"tensorflow/serving/predict"}
    # the rewritten fingerprint (read with the public reader) is that of the rewritten
    # saved_model.pb (hashed by TensorFlow's own code, as tf.saved_model.save hashes it)
    from tensorflow.python.saved_model import fingerprinting_utils  # noqa: PLC0415
    assert (tf.saved_model.experimental.read_fingerprint(exported).singleprint()
            == fingerprinting_utils.singleprint_from_saved_model_proto(exported))


def serialized(*examples):
    """Serialized tf.Examples from {feature: tf.train.Feature} dicts."""
    return tf.constant([tf.train.Example(features=tf.train.Features(feature=e))
                        .SerializeToString() for e in examples])


def text_feature(*values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


BAD_EXAMPLES = [  # (examples, the error)
    ([{"text_a": text_feature("a"), "text_b": text_feature("b")}, {"text_a": text_feature("a")}],
     r"inputs\[1\]: feature text_b has 0 values, expected 1 \(a bytes_list with one UTF-8"),
    ([{"text_a": text_feature("a", "b"), "text_b": text_feature("b")}],
     r"inputs\[0\]: feature text_a has 2 values, expected 1"),
    ([{"text_a": tf.train.Feature(int64_list=tf.train.Int64List(value=[7])),
       "text_b": text_feature("b")}],
     r"Key: text_a, Index: 0.  Data types don't match. Expected type: string, Actual type: int64"),
]


@pytest.mark.parametrize("signature", ["mnli_examples", "mnli_classify", "sts_regress"])
@pytest.mark.parametrize("examples,message", BAD_EXAMPLES)
def test_bad_examples_are_rejected_with_what_was_expected(reloaded, signature, examples,
                                                          message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        reloaded.signatures[signature](inputs=serialized(*examples))


def test_bytes_that_are_not_an_example_are_rejected(reloaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="Could not parse example input"):
        reloaded.signatures["chunk_examples"](inputs=tf.constant([b"not a proto"]))


@pytest.mark.parametrize("name", ["mnli", "sst", "sts", "chunk", "squad"])
def test_raw_text_is_featurised_as_training(served, python_features, name):
    text = served[f"{name}_text"]
    width = text["input_ids"].shape[1]
    for key in ("input_ids", "input_mask", "segment_ids"):
        expected = python_features[name][key]
        np.testing.assert_array_equal(text[key], expected[:, :width], err_msg=key)
        assert not expected[:, width:].any()
    if name in ("mnli", "sst"):  # truncation to S: the long inputs fill it exactly
        assert text["input_mask"].sum(1).max() == S


def test_classification_equals_keras_with_label_names(served, keras_outputs, task):
    for name in ("mnli", "sst"):
        logits = keras_outputs[name]["logits"]
        labels = np.array(task[name].label_list)[logits.argmax(-1)]
        for call in (f"{name}_ids", f"{name}_text"):
            out = served[call]
            np.testing.assert_allclose(out["logits"], logits, atol=1e-5, err_msg=call)
            np.testing.assert_allclose(out["probabilities"], tf.nn.softmax(logits), atol=1e-5)
            assert out["label"].tolist() == labels.tolist()
            assert out["label_id"].dtype == np.int32 and out["logits"].dtype == np.float32
    assert set(served["mnli_text"]["label"]) <= {"contradiction", "entailment", "neutral"}


def test_regression_prediction_and_sts_scale(served, keras_outputs):
    prediction = keras_outputs["sts"]["predictions"]
    for call in ("sts_ids", "sts_text"):
        np.testing.assert_allclose(served[call]["prediction"], prediction, atol=1e-5)
        np.testing.assert_allclose(served[call]["score"], 5 * prediction, atol=5e-5)


def test_tagging_per_word_tags(served, keras_outputs, python_features, finetuned):
    tags = model_dir.label_names(finetuned.tasks[TASKS.index("chunk")])
    assert tags == sorted(["B-NP", "E-NP", "S-VP", "O"])
    out, features = served["chunk_text"], python_features["chunk"]
    mask = features["chunk_labels_mask"] > 0
    logits = keras_outputs["chunk"]["logits"]  # at the labelled positions
    for i, sentence in enumerate(SENTENCES):
        words, n = sentence.split(), int(mask[i].sum())
        assert out["words"][i, :len(words)].tolist() == words
        assert out["word_tagged"][i].tolist() == [True] * n + [False] * (
            out["words"].shape[1] - n)
        np.testing.assert_allclose(out["word_logits"][i, :n], logits[i, :n], atol=1e-5)
        assert out["word_label"][i, :n].tolist() == [tags[k] for k in logits[i, :n].argmax(-1)]
        assert out["word_label"][i, n:].tolist() == [""] * (len(out["words"][i]) - n)
        assert (out["word_label_id"][i, n:] == -1).all()
    # the task's truncation rule as written: S - #words - 4 pieces before a kept word
    assert mask.sum(1).tolist() == [7, 5, 0, 20, 4, 0]
    assert out["input_ids"][5, 0] == 102  # 50 words > S - 3: the input is [SEP] alone
    # ids signature: per token, equal to the head on every position
    per_token = served["chunk_ids"]["logits"]
    positions = features["chunk_labeled_positions"]
    gathered = np.take_along_axis(per_token, positions[:, :, None], 1)
    np.testing.assert_allclose(gathered[mask], logits[mask], atol=1e-5)
    assert served["chunk_ids"]["label"][0, 1] == tags[per_token[0, 1].argmax()]


def decode_in_python(finetuned, examples):
    """Our Python featurisation of every window, the Keras model, and `decoding.decode`.

    Returns:
        (predictions, windows per example).
    """
    task = finetuned.tasks[[t.name for t in finetuned.tasks].index("squad")]
    windows = task.windows(examples, is_training=False)
    features = task.featurize(examples, False)
    full = {**dummy_features(finetuned.tasks, len(features["input_ids"]), S), **features}
    outputs = {k: np.asarray(v) for k, v in finetuned.model(full, training=False)["squad"].items()}
    predictions = decoding.decode(examples, windows, outputs, finetuned.config, True,
                                  task.tokenizer.inv_vocab)
    return predictions, np.bincount([w.example_index for w in windows],
                                    minlength=len(examples))


def assert_answers_equal(out, predictions, window_count, contexts):
    """The served answers equal the Python decoder's on every single-window context.

    Returns:
        (answers, answers starting inside a word) among those contexts.
    """
    single = window_count == 1
    assert out["context_truncated"].tolist() == (~single).tolist()
    answered = inside_word = 0
    for i, (context, prediction) in enumerate(zip(contexts, predictions)):
        start, end = int(out["answer_start"][i]), int(out["answer_end"][i])
        if prediction.text == "empty":  # the original's placeholder: no candidate left
            assert out["answer_text"][i] == "" and start == end == -1
            assert not out["has_answer"][i]
            continue
        assert " ".join(context[start:end].split()) == out["answer_text"][i]
        if not single[i]:
            continue
        assert out["answer_text"][i] == prediction.text, (i, context)
        best = prediction.nbest[0]
        np.testing.assert_allclose(out["score"][i], best[1] + best[2], atol=1e-5)
        np.testing.assert_allclose(out["no_answer_logit"][i], prediction.null_odds, atol=1e-5)
        assert out["has_answer"][i] == (prediction.null_odds <= -2.75)
        answered += 1
        inside_word += start > 0 and not context[start - 1].isspace()
    return answered, inside_word


def test_qa_head_outputs_equal_keras(served, keras_outputs):
    expected = keras_outputs["squad"]
    for call in ("squad_ids", "squad_text"):
        out = served[call]
        for key in ("start_logits", "answerable_logit", "start_top_log_probs",
                    "end_top_log_probs"):
            np.testing.assert_allclose(out[key], expected[key], atol=1e-5, err_msg=key)
        np.testing.assert_array_equal(out["start_top_index"], expected["start_top_index"])
        np.testing.assert_allclose(out["no_answer_probability"],
                                   tf.sigmoid(expected["answerable_logit"]), atol=1e-5)


def test_qa_answers_equal_the_python_decoder(served, finetuned, python_features):
    questions, contexts = python_features["qa_inputs"]
    predictions, window_count = decode_in_python(finetuned, python_features["qa_examples"])
    assert (window_count[:-1] == 1).all() and window_count[-1] > 1
    answered, inside_word = assert_answers_equal(served["squad_text"], predictions,
                                                 window_count, contexts)
    assert answered >= 20 and inside_word >= 3
    single = window_count == 1
    for key in ("start_index", "end_index", "score", "no_answer_logit", "has_answer"):
        np.testing.assert_allclose(served["squad_ids"][key][single],
                                   served["squad_text"][key][single], atol=1e-5, err_msg=key)


def test_qa_without_joint_prediction_or_answerable_classifier(finetuned, python_features,
                                                             tmp_path):
    """n-best starts × n-best ends, and null odds from the [CLS] logits (in process)."""
    config = FinetuningConfig("m", os.path.dirname(os.path.dirname(finetuned.vocab_file)),
                              task_names=["squad"], joint_prediction=False,
                              answerable_classifier=False, **TINY)
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file))
    directory = model_dir.save(str(tmp_path / "squad_model_1"), config,
                               build_finetuning_model(config, tasks), tasks)
    variant = model_dir.load(directory)
    served = tf.saved_model.load(export_lib.export_saved_model(directory, str(tmp_path / "e")))
    questions, contexts = python_features["qa_inputs"]
    out = {k: v.numpy() for k, v in served.signatures["serving_default"](
        question=tf.constant(questions), context=tf.constant(contexts)).items()}
    out["answer_text"] = np.array([text.decode() for text in out["answer_text"]])
    assert "end_logits" in out and "start_top_index" not in out
    assert "no_answer_probability" not in out
    predictions, window_count = decode_in_python(variant, python_features["qa_examples"])
    answered, _ = assert_answers_equal(out, predictions, window_count, contexts)
    assert answered >= 20


def test_qa_trained_model_answers_as_the_python_pipeline(tmp_path):
    """A model trained a little (dev F1 100) exported from its trial directory: answers and
    null odds equal what `run_finetuning` decoded and wrote, and `has_answer` tells the
    unanswerable questions apart."""
    shutil.copy(FIXTURES / "vocab_tiny.txt", tmp_path / "vocab.txt")
    synthetic.write_squad_data(str(tmp_path), "squad", train=400, dev=40, seed=1, max_words=25)
    config = FinetuningConfig("random", str(tmp_path), task_names=["squad"], **dict(
        TINY, learning_rate=3e-3, layerwise_lr_decay=0.0, num_train_epochs=2.0))
    assert trials.run_finetuning(config)[0]["squad"]["f1"] == 100.0
    export = export_lib.export_saved_model(config.model_dir + "_1", str(tmp_path / "export"))
    paragraphs = json.loads((tmp_path / "finetuning_data" / "squad" / "dev.json").read_text(
        ))["data"][0]["paragraphs"]
    out = tf.saved_model.load(export).signatures["squad_text"](
        question=tf.constant([p["qas"][0]["question"] for p in paragraphs]),
        context=tf.constant([p["context"] for p in paragraphs]))
    answers = json.loads(open(config.qa_preds_file("squad")).read())
    null_odds = json.loads(open(config.qa_na_file("squad")).read())
    assert not out["context_truncated"].numpy().any()
    for i, paragraph in enumerate(paragraphs):
        qa = paragraph["qas"][0]
        assert out["answer_text"][i].numpy().decode() == answers[qa["id"]]
        np.testing.assert_allclose(out["no_answer_logit"][i], null_odds[qa["id"]], atol=1e-5)
        assert bool(out["has_answer"][i]) == bool(qa["answers"])


@pytest.fixture(scope="module")
def reloaded(exported):
    """The export loaded back in this process."""
    return tf.saved_model.load(exported)


@pytest.mark.parametrize("task_name", ["mnli", "chunk", "squad"])
@pytest.mark.parametrize("name,value,message", OUT_OF_RANGE)
def test_ids_outside_the_embedding_tables_are_rejected(reloaded, python_features, task_name,
                                                       name, value, message):
    features = {k: python_features[task_name][k] for k in ("input_ids", "input_mask",
                                                            "segment_ids")}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        reloaded.signatures[f"{task_name}_ids"](**with_value(features, name, value))


def test_an_empty_batch_gives_empty_outputs(exported, reloaded):
    k = 20  # beam_size
    answers = assert_empty_batches_work(exported, reloaded, {
        "word_logits": (None, 4),
        "start_logits": (S,), "start_top_index": (k,), "end_top_index": (k, k),
        "end_top_log_probs": (k, k)})
    assert {f"{t}_text" for t in TASKS} | {f"{t}_ids" for t in TASKS} <= set(answers)
    assert answers["mnli_text"]["probabilities"].shape == (0, 3)
    assert answers["mnli_text"]["label"].shape == answers["sts_ids"]["score"].shape == (0,)
    assert answers["chunk_text"]["logits"].shape[2] == 4
    assert answers["squad_text"]["answer_text"].shape == (0,)
    assert answers["mnli_classify"]["classes"].shape == (0, 3)
    assert answers["sts_regress"]["outputs"].shape == (0,)
    assert answers["chunk_examples"]["word_label"].shape[0] == 0


def test_op_types_are_the_recorded_serving_ops(exported):
    assert_recorded_ops(exported, "finetuned")


def test_keras_file_round_trip(finetuned, python_features, keras_outputs, tmp_path):
    path = str(tmp_path / "finetuned.keras")
    finetuned.model.save(path)
    restored = keras.models.load_model(path)
    assert [t.name for t in restored.tasks] == TASKS
    for name in ("mnli", "chunk", "squad"):
        features = python_features[name]
        full = {**dummy_features(finetuned.tasks, len(features["input_ids"]), S),
                **features}
        out = restored(full, training=False)[name]
        key = "start_top_log_probs" if name == "squad" else "logits"
        np.testing.assert_allclose(out[key], keras_outputs[name][key], atol=1e-6)
    assert restored.get_config() == finetuned.model.get_config()
    assert restored.tasks[3].feature_specs()["chunk_labels"] == ((S,), np.int32)
