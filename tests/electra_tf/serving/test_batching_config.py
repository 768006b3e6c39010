"""The recommended TF Serving batching parameters (configs/serving/batching_parameters.txt):
they parse as the server parses them, and they are what the serving benchmark's derivation
gives for the measurements the file records."""

import sys

import numpy as np
import pytest
from google.protobuf import (descriptor_pb2, descriptor_pool, message_factory, text_format,
                             wrappers_pb2)

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import serving_latency  # noqa: E402

CONFIG = REPO / "configs" / "serving" / "batching_parameters.txt"
_FIELD = descriptor_pb2.FieldDescriptorProto
INT64, STRING, BOOL = (".google.protobuf.Int64Value", ".google.protobuf.StringValue",
                       ".google.protobuf.BoolValue")
# `message BatchingParameters` of tensorflow/serving
# tensorflow_serving/servables/tensorflow/session_bundle_config.proto: (name, number, type,
# label). The message is the same at tag 2.20.0 and on master at 9d981c5c (July 2026); its
# last change is 88ff3dd3 (February 2025), so TF Serving 2.21 reads this schema.
BATCHING_PARAMETERS_FIELDS = (
    ("max_batch_size", 1, INT64, _FIELD.LABEL_OPTIONAL),
    ("batch_timeout_micros", 2, INT64, _FIELD.LABEL_OPTIONAL),
    ("max_enqueued_batches", 3, INT64, _FIELD.LABEL_OPTIONAL),
    ("num_batch_threads", 4, INT64, _FIELD.LABEL_OPTIONAL),
    ("thread_pool_name", 5, STRING, _FIELD.LABEL_OPTIONAL),
    ("allowed_batch_sizes", 6, _FIELD.TYPE_INT64, _FIELD.LABEL_REPEATED),
    ("pad_variable_length_inputs", 7, _FIELD.TYPE_BOOL, _FIELD.LABEL_OPTIONAL),
    ("enable_large_batch_splitting", 8, BOOL, _FIELD.LABEL_OPTIONAL),
    ("max_execution_batch_size", 9, INT64, _FIELD.LABEL_OPTIONAL),
)


def batching_parameters_class():
    """`tensorflow.serving.BatchingParameters` as a message class, built from
    `BATCHING_PARAMETERS_FIELDS` (tensorflow-serving-api ships no session_bundle_config_pb2).
    """
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    file = descriptor_pb2.FileDescriptorProto(
        name="electra_test/session_bundle_config.proto", package="tensorflow.serving",
        syntax="proto3", dependency=[wrappers.name])
    message = file.message_type.add(name="BatchingParameters")
    for name, number, kind, label in BATCHING_PARAMETERS_FIELDS:
        if isinstance(kind, str):  # a wrapper message
            message.field.add(name=name, number=number, label=label,
                              type=_FIELD.TYPE_MESSAGE, type_name=kind)
        else:
            message.field.add(name=name, number=number, label=label, type=kind)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(wrappers)
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


BatchingParameters = batching_parameters_class()


def parse(text):
    return text_format.Parse(text, BatchingParameters())


def test_config_file_parses_as_batching_parameters_the_server_accepts():
    params = parse(CONFIG.read_text())
    for name in serving_latency.WRAPPED_FIELDS:
        assert params.HasField(name), name
    sizes = list(params.allowed_batch_sizes)
    # The server's checks (bundle_factory_util.cc WrapSessionForBatching,
    # batching_session.cc): increasing sizes, the last one equal to max_batch_size.
    assert sizes == sorted(set(sizes)) and sizes[0] >= 1
    assert sizes[-1] == params.max_batch_size.value
    assert params.num_batch_threads.value >= 1
    assert params.max_enqueued_batches.value >= params.num_batch_threads.value
    assert 0 < params.batch_timeout_micros.value < 100_000
    assert params.pad_variable_length_inputs is False


@pytest.mark.parametrize("text, error", [
    ("max_batch_size: 32", "max_batch_size"),          # a wrapper needs `{ value: 32 }`
    ("max_batch_sizes { value: 32 }", "max_batch_sizes"),
    ("allowed_batch_sizes: 1.5", "allowed_batch_sizes"),
])
def test_schema_rejects_what_the_server_would(text, error):
    with pytest.raises(text_format.ParseError, match=error):
        parse(text)


def test_config_numbers_are_the_derivation_of_its_measurements():
    text = CONFIG.read_text()
    p50_ms, options = serving_latency.read_derivation(text)
    assert sorted(p50_ms) == [1, 2, 4, 8, 16, 32, 64]
    assert "S=128" in text and "SST classifier" in text
    derived, _ = serving_latency.derive_batching_parameters(p50_ms, **options)
    assert parse(serving_latency.text_proto(derived)) == parse(text)


# A fixed cost per call and a cost per sequence: latency(b) = 50 + 10·b ms, so throughput
# grows towards 100 seq/s: 16.7, 28.6, 44.4, 61.5, 76.2, 86.5, 92.8 for b = 1 ... 64.
AFFINE = {b: 50.0 + 10.0 * b for b in (1, 2, 4, 8, 16, 32, 64)}


def test_derivation_on_a_synthetic_curve():
    params, why = serving_latency.derive_batching_parameters(AFFINE, cpu_cores=4)
    assert params == {"max_batch_size": 32,  # 86.5 seq/s is within 10% of 92.8; 76.2 is not
                      "batch_timeout_micros": 6000,  # 10% of 60 ms
                      "max_enqueued_batches": 4, "num_batch_threads": 4,
                      "allowed_batch_sizes": [1, 2, 4, 8, 16, 32],
                      "pad_variable_length_inputs": False}
    assert set(why) == set(params)
    assert "batch 64" in why["max_batch_size"]


@pytest.mark.parametrize("curve, kwargs, max_batch", [
    (AFFINE, {"latency_budget_ms": 300}, 16),       # 32 (370 ms) is over the budget
    (AFFINE, {"throughput_tolerance": 0.0}, 64),    # only the best will do
    (AFFINE, {"throughput_tolerance": 0.5}, 8),     # 61.5 ≥ 46.4 (half of 92.8) > 44.4
    ({b: 60.0 * b for b in (1, 2, 4, 8)}, {}, 1),   # compute-bound: batching buys nothing
])
def test_max_batch_size_follows_throughput_and_budget(curve, kwargs, max_batch):
    params, _ = serving_latency.derive_batching_parameters(curve, cpu_cores=2, **kwargs)
    assert params["max_batch_size"] == max_batch
    assert params["allowed_batch_sizes"][-1] == max_batch


@pytest.mark.parametrize("curve, kwargs, message", [
    ({2: 10.0, 4: 20.0}, {}, "batch size 1"),
    (AFFINE, {"latency_budget_ms": 50}, "latency_budget_ms=50"),
    (AFFINE, {"cpu_cores": 0}, "cpu_cores"),
    ({1: 0.0}, {}, "positive"),
])
def test_derivation_errors_name_the_input(curve, kwargs, message):
    with pytest.raises(ValueError, match=message):
        serving_latency.derive_batching_parameters(curve, **{"cpu_cores": 2, **kwargs})


def test_text_proto_round_trips_through_the_schema():
    params, _ = serving_latency.derive_batching_parameters(AFFINE, cpu_cores=3)
    message = parse(serving_latency.text_proto(params))
    assert message.max_batch_size.value == 32 and message.num_batch_threads.value == 3
    assert list(message.allowed_batch_sizes) == params["allowed_batch_sizes"]
    assert message.batch_timeout_micros.value == 6000


def server_padding(tensor, length):
    """TF Serving's `AddPadding` (tensorflow_serving/batching/batching_util.cc) on a task's
    [B, S] tensor when `pad_variable_length_inputs` is true: the pad value is the tensor's
    first element (`input.flat<T>()(0)`)."""
    return np.pad(tensor, [(0, 0), (0, length - tensor.shape[1])],
                  constant_values=tensor.flat[0])


def test_server_padding_of_ids_would_change_the_outputs(tiny_loaded, tiny_config):
    """Why the file leaves `pad_variable_length_inputs` false: a short ids request batched
    with a longer one would be padded with its [CLS] id and input_mask 1, i.e. attended."""
    rng = np.random.default_rng(0)
    short = {"input_ids": rng.integers(1, tiny_config.vocab_size, (1, 6), dtype=np.int32),
             "input_mask": np.ones((1, 6), np.int32), "segment_ids": np.zeros((1, 6), np.int32)}
    alone = tiny_loaded.discriminator(short)["logits"].numpy()
    by_server = {k: server_padding(v, 10) for k, v in short.items()}
    masked = {k: np.pad(v, [(0, 0), (0, 4)]) for k, v in short.items()}  # [PAD] id 0, mask 0
    assert by_server["input_mask"].tolist() == [[1] * 10]
    server_logits = tiny_loaded.discriminator(by_server)["logits"].numpy()[:, :6]
    masked_logits = tiny_loaded.discriminator(masked)["logits"].numpy()[:, :6]
    np.testing.assert_allclose(masked_logits, alone, atol=1e-5)
    assert np.abs(server_logits - alone).max() > 1e-2
