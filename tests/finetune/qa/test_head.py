"""The QA head: the original fine-tuned SQuAD 2.0 checkpoint, and a NumPy transcription of
the original head (written from its description) for the training path and the variants the
fixture does not cover."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.models import Encoder
from finetune import model as model_lib
from finetune import weights
from finetune.config import FinetuningConfig
from finetune.qa.head import QAHead
from tests.conftest import FIXTURES

SQUAD = FIXTURES / "original-tiny-squad"
# Variant -> {original name: shape} for H=8, hidden_size_qa=16.
H, QA = 8, 16
VARIANTS = {
    "joint": (dict(), {"dense": [H, 1], "qa_hidden": [2 * H, QA], "dense_1": [QA, 1],
                       "dense_2": [2 * H, QA], "dense_3": [QA, 1]}),
    "joint_cls_only": (dict(answerable_uses_start_logits=False),
                       {"dense": [H, 1], "qa_hidden": [2 * H, QA], "dense_1": [QA, 1],
                        "dense_2": [H, 1]}),
    "independent": (dict(joint_prediction=False),
                    {"dense": [H, 1], "dense_1": [H, 1], "dense_2": [2 * H, QA],
                     "dense_3": [QA, 1]}),
    "independent_cls_only": (dict(joint_prediction=False, answerable_uses_start_logits=False),
                             {"dense": [H, 1], "dense_1": [H, 1], "dense_2": [H, 1]}),
    "no_classifier": (dict(answerable_classifier=False),
                      {"dense": [H, 1], "qa_hidden": [2 * H, QA], "dense_1": [QA, 1]}),
}


# ---------------------------------------------------------------- NumPy transcription

_erf = np.vectorize(math.erf)


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def np_log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def np_dense(w, name, x, act=None):
    y = x @ w[f"{name}/kernel"] + w[f"{name}/bias"]
    return np_gelu(y) if act else y


def np_top_k(x, k):
    index = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, index, -1), index


def reference(w, f, joint=True, answerable_classifier=True, uses_start=True, weight=0.5,
              beam=4, training=False):
    """The original head in float64, written from its description, one example at a time."""
    hidden = f["sequence_output"].astype(np.float64)
    B, S, _ = hidden.shape
    mask = f["input_mask"] * f["segment_ids"] + np.eye(S)[0]
    adder = 1000.0 * (mask - 1.0)
    out = {"start_logits": np_dense(w, "dense", hidden)[..., 0] + adder,
           "start_top_log_probs": np.zeros([B, beam]), "start_top_index": np.zeros([B, beam]),
           "end_top_log_probs": np.zeros([B, beam, beam]),
           "end_top_index": np.zeros([B, beam, beam])}

    def end_given_start(b, s):  # [S]: dense_1(qa_hidden([h_s ; h_t])) for every t
        reprs = np.concatenate([np.tile(hidden[b, s], (S, 1)), hidden[b]], -1)
        return np_dense(w, "dense_1", np_dense(w, "qa_hidden", reprs, "gelu"))[:, 0] + adder[b]

    if not joint:
        out["end_logits"] = np_dense(w, "dense_1", hidden)[..., 0] + adder
    else:
        out["start_top_log_probs"], out["start_top_index"] = np_top_k(
            np_log_softmax(out["start_logits"]), beam)
        if training:
            out["end_logits"] = np.stack([end_given_start(b, f["squad_start_positions"][b])
                                          for b in range(B)])
        else:
            beams = np.stack([[end_given_start(b, s) for s in out["start_top_index"][b]]
                              for b in range(B)])
            out["end_top_log_probs"], out["end_top_index"] = np_top_k(
                np_log_softmax(beams), beam)
            out["end_logits"] = np.zeros([B, S])
    rows = np.arange(B)
    out["loss"] = -(np_log_softmax(out["start_logits"])[rows, f["squad_start_positions"]]
                    + np_log_softmax(out["end_logits"])[rows, f["squad_end_positions"]]) / 2
    out["answerable_logit"] = np.zeros(B)
    if answerable_classifier:
        reprs = hidden[:, 0]
        if uses_start:
            p = np.exp(np_log_softmax(out["start_logits"]))
            reprs = np_dense(w, "dense_2", np.concatenate(
                [reprs, (p[..., None] * hidden).sum(1)], -1), "gelu")
        z = np_dense(w, "dense_3" if uses_start else "dense_2", reprs)[:, 0]
        y = f["squad_is_impossible"]
        out["answerable_logit"] = z
        out["loss"] = out["loss"] + weight * (np.logaddexp(0, z) - y * z)  # sigmoid CE
    return out


# ---------------------------------------------------------------- helpers

def random_features(seed=0, batch=3, seq=10, hidden=H):
    """Row 0: full; row 1: padded; row 2: no segment 1 (only [CLS] is answerable)."""
    rng = np.random.RandomState(seed)
    input_mask = np.zeros([batch, seq], np.int32)
    segment_ids = np.zeros([batch, seq], np.int32)
    for b, (n_real, first_b) in enumerate([(seq, 4), (7, 3), (5, seq)][:batch]):
        input_mask[b, :n_real] = 1
        segment_ids[b, first_b:n_real] = 1
    return {"sequence_output": rng.normal(size=[batch, seq, hidden]).astype(np.float32),
            "input_mask": input_mask, "segment_ids": segment_ids,
            "squad_start_positions": np.array([5, 4, 0][:batch], np.int32),
            "squad_end_positions": np.array([7, 4, 0][:batch], np.int32),
            "squad_is_impossible": np.array([0, 0, 1][:batch], np.int32),
            "squad_eid": np.arange(batch, dtype=np.int32) * 1000}


def random_head(seed=0, dtype=None, **variant):
    """A built head with random, non-trivial weights (biases included); and the weights."""
    head = QAHead("squad", beam_size=4, hidden_size_qa=QA, dtype=dtype, **variant)
    head.build({"sequence_output": (None, None, H)})
    rng = np.random.RandomState(seed)
    weights = {}
    for name, variable in sorted(head.original_variables().items()):
        fan_in = variable.shape[0] if len(variable.shape) == 2 else 4
        value = rng.normal(scale=1.5 / math.sqrt(fan_in), size=variable.shape)
        variable.assign(value.astype(np.float32))
        weights[name] = variable.numpy().astype(np.float64)
    return head, weights


def run(head, f, training):
    encoder_outputs = {"sequence_output": tf.constant(f["sequence_output"])}
    return {k: np.asarray(v) for k, v in head(encoder_outputs, f, training=training).items()}


def assert_logits_close(ours, ref, mask):
    """Within 1e-5 inside the answer mask; outside, the −1000 offset within float32 spacing."""
    in_mask = np.broadcast_to(mask, ref.shape) > 0
    np.testing.assert_allclose(ours[in_mask], ref[in_mask], atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ours[~in_mask], ref[~in_mask], atol=2e-4, rtol=1e-6)


def assert_top_k_close(ours_values, ours_index, ref_values, ref_index):
    """Values everywhere; indices exactly where the log-prob is above −100 (no ties)."""
    np.testing.assert_allclose(ours_values, ref_values, atol=2e-4, rtol=1e-6)
    live = ref_values > -100
    np.testing.assert_allclose(ours_values[live], ref_values[live], atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(ours_index[live], ref_index[live])


def answer_mask_of(f):
    mask = f["input_mask"] * f["segment_ids"]
    mask[:, 0] = 1
    return mask


# ---------------------------------------------------------------- the original checkpoint

@pytest.fixture(scope="module")
def squad_run():
    kwargs = json.loads((SQUAD / "config.json").read_text())["finetuning_config_kwargs"]
    config = FinetuningConfig("tiny", "/nonexistent", **kwargs)
    prefix = str(SQUAD / "ckpt" / "model.ckpt")
    values = checkpoints.read_checkpoint(prefix)
    encoder = Encoder.from_bert_config(config.bert_config(),
                                       embedding_size=config.embedding_size)
    weights.load_encoder_weights(values, encoder, prefix)
    inputs = dict(np.load(SQUAD / "inputs.npz"))
    encoder_outputs = encoder({k: inputs[k] for k in ("input_ids", "input_mask",
                                                      "segment_ids")})
    head = QAHead.from_config_for_task(config, "squad")
    head(encoder_outputs, inputs)
    for name, variable in head.original_variables().items():
        variable.assign(values[f"task_specific/squad/{name}"])
    outputs = head(encoder_outputs, inputs, training=False)
    return head, inputs, {k: np.asarray(v) for k, v in outputs.items()}, outputs


def test_original_squad_checkpoint_is_reproduced(squad_run):
    _, inputs, ours, outputs = squad_run
    expected = np.load(SQUAD / "outputs_eval.npz")
    keys = sorted(k[len("squad."):] for k in expected.files if k.startswith("squad."))
    assert keys == sorted(ours)
    mask = answer_mask_of(inputs)
    np.testing.assert_allclose(ours["answerable_logit"], expected["squad.answerable_logit"],
                               atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(ours["loss"], expected["squad.loss"], atol=1e-5, rtol=1e-5)
    total = model_lib.combine_losses([outputs["loss"]], inputs["task_id"])
    np.testing.assert_allclose(float(total), expected["loss"], atol=1e-5, rtol=1e-5)
    assert_logits_close(ours["start_logits"], expected["squad.start_logits"], mask)
    # Eval mode: the original zeroes the end logits, so its loss holds log(S)/2.
    np.testing.assert_array_equal(ours["end_logits"], np.zeros([4, 32]))
    for kind in ("start", "end"):
        assert ours[f"{kind}_top_index"].dtype == np.int32
        assert_top_k_close(ours[f"{kind}_top_log_probs"], ours[f"{kind}_top_index"],
                           expected[f"squad.{kind}_top_log_probs"],
                           expected[f"squad.{kind}_top_index"])
    # Measured: even the masked tail's indices match (no float32 tie broke differently).
    for key in ("start_top_index", "end_top_index", "start_positions", "end_positions", "eid"):
        np.testing.assert_array_equal(ours[key], expected[f"squad.{key}"])
    for key in ours:
        assert outputs[key].dtype == expected[f"squad.{key}"].dtype, key


def test_every_original_head_variable_is_mapped(squad_run):
    head = squad_run[0]
    inventory = json.loads((SQUAD / "checkpoint_variables.json").read_text())["variables"]
    original = {v["name"][len("task_specific/squad/"):]: v["shape"] for v in inventory
                if v["name"].startswith("task_specific/squad/")
                and not v["name"].endswith(("/adam_m", "/adam_v"))}
    ours = {n: list(v.shape) for n, v in head.original_variables().items()}
    assert len(original) == 10
    assert ours == original
    assert all(v.dtype == "float32" for v in head.original_variables().values())


# ---------------------------------------------------------------- training path, variants

@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("training", [True, False])
def test_matches_numpy_transcription(variant, training):
    kwargs, shapes = VARIANTS[variant]
    head, weights = random_head(**kwargs)
    assert {n.split("/")[0]: list(v.shape) for n, v in head.original_variables().items()
            if n.endswith("/kernel")} == shapes
    f = random_features()
    ours = run(head, f, training)
    ref = reference(weights, f, joint=head.joint_prediction,
                    answerable_classifier=head.answerable_classifier,
                    uses_start=head.answerable_uses_start_logits, training=training)
    mask = answer_mask_of(f)
    assert_logits_close(ours["start_logits"], ref["start_logits"], mask)
    assert_logits_close(ours["end_logits"], ref["end_logits"],
                        mask if ref["end_logits"].any() else 1)
    for kind in ("start", "end"):
        assert_top_k_close(ours[f"{kind}_top_log_probs"], ours[f"{kind}_top_index"],
                           ref[f"{kind}_top_log_probs"], ref[f"{kind}_top_index"])
    np.testing.assert_allclose(ours["answerable_logit"], ref["answerable_logit"], atol=1e-5)
    np.testing.assert_allclose(ours["loss"], ref["loss"], atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(ours["eid"], f["squad_eid"])


def test_training_path_uses_the_gold_start_and_masks():
    head, weights = random_head()
    f = random_features()
    ours = run(head, f, training=True)
    mask = answer_mask_of(f)
    # Outside the answer mask (question, first [SEP], padding) the logits sit near −1000.
    for key in ("start_logits", "end_logits"):
        assert (ours[key][mask == 0] < -900).all() and (ours[key][mask == 1] > -100).all()
    # Row 2 has no context: [CLS] gets all the probability, start and end.
    assert ours["start_logits"][2].argmax() == 0 and ours["end_logits"][2].argmax() == 0
    # The end is conditioned on the *gold* start: moving it changes the end logits, as
    # the transcription predicts, and leaves the start logits alone.
    moved = dict(f, squad_start_positions=np.array([8, 6, 0], np.int32))
    ours_moved = run(head, moved, training=True)
    np.testing.assert_array_equal(ours_moved["start_logits"], ours["start_logits"])
    assert np.abs(ours_moved["end_logits"] - ours["end_logits"])[:2][mask[:2] == 1].min() > 0
    ref = reference(weights, moved, training=True)
    assert_logits_close(ours_moved["end_logits"], ref["end_logits"], mask)
    # Teacher forcing with gold start s gives the beam row of s at inference.
    beam = run(head, f, training=False)
    for b in range(2):
        k = list(beam["start_top_index"][b]).index(f["squad_start_positions"][b])
        top = np.sort(tf.nn.log_softmax(ours["end_logits"][b]).numpy())[::-1][:4]
        np.testing.assert_allclose(beam["end_top_log_probs"][b, k], top, atol=1e-5)


@pytest.mark.parametrize("variant", ["joint", "independent", "no_classifier"])
def test_infer_needs_no_labels(variant):
    """`infer` (what serving calls) reads no labels and equals the eval-mode call."""
    head, _ = random_head(**VARIANTS[variant][0])
    f = random_features()
    labelled = run(head, f, training=False)
    encoder_outputs = {"sequence_output": tf.constant(f["sequence_output"])}
    unlabelled = {k: f[k] for k in ("input_mask", "segment_ids")}
    out = head.infer(encoder_outputs, unlabelled)
    assert sorted(out) == sorted(set(labelled) - {"loss", "start_positions", "end_positions",
                                                  "eid"})
    for key, value in out.items():
        np.testing.assert_array_equal(value, labelled[key], err_msg=key)
    with pytest.raises(ValueError, match="training needs the labels"):
        head(encoder_outputs, unlabelled, training=True, labels=False)


def test_loss_by_hand_is_impossible_and_weight():
    f = random_features()
    head, weights = random_head(answerable_weight=0.25)
    ours = run(head, f, training=True)
    ref = reference(weights, f, weight=0.25, training=True)
    np.testing.assert_allclose(ours["loss"], ref["loss"], atol=1e-5, rtol=1e-5)
    # Flipping is_impossible changes the loss by weight · (BCE(z, 1) − BCE(z, 0)) = −w·z.
    flipped = run(head, dict(f, squad_is_impossible=1 - f["squad_is_impossible"]), True)
    z = ours["answerable_logit"]
    sign = np.where(f["squad_is_impossible"] == 1, 1.0, -1.0)
    np.testing.assert_allclose(flipped["loss"] - ours["loss"], 0.25 * sign * z, atol=1e-5)


# ---------------------------------------------------------------- sizes, precision, graph

@pytest.mark.parametrize("hidden,qa_rows", [(256, 512), (768, 1536)])
def test_variable_shapes_small_and_base(hidden, qa_rows):
    for kwargs, expected in [
            ({}, {"dense": [hidden, 1], "qa_hidden": [qa_rows, 512], "dense_1": [512, 1],
                  "dense_2": [qa_rows, 512], "dense_3": [512, 1]}),
            ({"joint_prediction": False, "answerable_uses_start_logits": False},
             {"dense": [hidden, 1], "dense_1": [hidden, 1], "dense_2": [hidden, 1]})]:
        head = QAHead("squad", **kwargs)
        head.build({"sequence_output": (None, None, hidden)})
        variables = head.original_variables()
        assert {n[:-len("/kernel")]: list(v.shape) for n, v in variables.items()
                if n.endswith("/kernel")} == expected
        assert all(list(variables[f"{n}/bias"].shape) == [s[1]] for n, s in expected.items())
        assert all(not np.any(variables[f"{n}/bias"].numpy()) for n in expected)
        # Glorot-uniform: |w| ≤ sqrt(6 / (fan_in + fan_out)).
        for name, (fan_in, fan_out) in expected.items():
            kernel = variables[f"{name}/kernel"].numpy()
            assert np.abs(kernel).max() <= math.sqrt(6 / (fan_in + fan_out)) + 1e-7
            assert kernel.std() > 0.5 * math.sqrt(2 / (fan_in + fan_out))


def test_mixed_bfloat16_close_to_float32():
    head, _ = random_head()
    head16, _ = random_head(dtype="mixed_bfloat16")
    assert all(v.dtype == "float32" for v in head16.original_variables().values())
    f = random_features()
    bf16 = dict(f, sequence_output=tf.cast(f["sequence_output"], tf.bfloat16))
    for training in (True, False):
        ours = run(head, f, training)
        encoder_outputs = {"sequence_output": bf16["sequence_output"]}
        low = head16(encoder_outputs, bf16, training=training)
        for key in ("loss", "start_logits", "end_logits", "answerable_logit",
                    "start_top_log_probs", "end_top_log_probs"):
            assert low[key].dtype == tf.float32, key
            value = low[key].numpy()
            assert np.isfinite(value).all(), key
            live = ours[key] > -100
            np.testing.assert_allclose(value[live], ours[key][live], atol=0.05, rtol=0.02,
                                       err_msg=key)


def test_xla_matches_eager_and_config_round_trips():
    head, _ = random_head()
    f = random_features()
    encoder_outputs = {"sequence_output": tf.constant(f["sequence_output"])}
    for training in (True, False):
        compiled = tf.function(lambda e, x: head(e, x, training=training), jit_compile=True)
        xla = compiled(encoder_outputs, f)
        eager = run(head, f, training)
        for key, value in eager.items():
            np.testing.assert_allclose(xla[key].numpy(), value, atol=2e-4, rtol=1e-5,
                                       err_msg=key)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(head))
    assert isinstance(clone, QAHead) and clone.get_config() == head.get_config()
    assert clone.get_config()["hidden_size_qa"] == QA and clone.beam_size == 4


def test_from_config_for_task_reads_the_qa_fields():
    config = FinetuningConfig("tiny", "/nonexistent", task_names=["squad"], beam_size=7,
                              joint_prediction=False, answerable_uses_start_logits=False,
                              answerable_weight=0.3, precision="mixed_bfloat16")
    head = QAHead.from_config_for_task(config, "squad")
    assert (head.beam_size, head.joint_prediction, head.answerable_classifier,
            head.answerable_uses_start_logits, head.answerable_weight) == (
                7, False, True, False, 0.3)
    assert head.name == "task_specific_squad" and head.dtype_policy.name == "mixed_bfloat16"


def test_bad_input_is_named():
    head, _ = random_head()
    f = random_features()
    del f["squad_is_impossible"]
    with pytest.raises(KeyError, match="squad_is_impossible"):
        run(head, f, training=True)
    with pytest.raises(ValueError, match="beam_size 4 is larger than the sequence length 3"):
        run(head, random_features(seq=3), training=False)
    with pytest.raises(ValueError, match="call it once"):
        QAHead("squad").original_variables()


def test_saved_and_loaded_as_keras_file(tmp_path):
    head, _ = random_head()
    f = random_features()
    inputs = {k: keras.Input(v.shape[1:], dtype=v.dtype, name=k) for k, v in f.items()}
    model = keras.Model(inputs, head({"sequence_output": inputs["sequence_output"]}, inputs))
    model.save(tmp_path / "qa.keras")
    loaded = keras.models.load_model(tmp_path / "qa.keras")
    assert isinstance(loaded.layers[-1], QAHead)
    expected, ours = model(f), loaded(f)
    for key in expected:
        np.testing.assert_array_equal(ours[key], expected[key], err_msg=key)
