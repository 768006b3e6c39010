"""The fine-tuning benchmarks: their FLOP counts, and a `--smoke` run of each; the serving
benchmark (latency, with its dense products alone, and batching sweep) in its `--smoke`
form; the pretraining benchmark's records, its per-process peak RSS, its best-of summary
and a `--smoke` run; the re-ranking and data-building benchmarks' `--smoke` runs. The
benchmarks that start with `common.print_machine`'s lines are checked for them."""

import os
import sys

import keras
import numpy as np
import pytest

# bench/, on sys.path by tests/bench/conftest.py
import build_throughput
import common
import finetune_throughput
import original
import pretrain_throughput
import rerank_scoring
import serving_latency
import squad_throughput
from electra_tf import flops
from electra_tf.training import precision
from pretrain_data import reader, tokenization


def test_encoder_flops_plus_binary_head_is_the_originals_inference_count():
    # The original's count: ELECTRA-Small inference at S=128 (dense lookup, binary head) is 3.68e9.
    config = finetune_throughput.bench_config("small", "float32", False, 32, 128)
    encoder = common.encoder_flops(config.bert_config(), config.embedding_size, 128)
    head = flops.TransformerFlops(256, 12, s=128, e=128).binary_classifier()
    assert encoder + head == pytest.approx(3.68e9, rel=2e-3)


def test_cpu_line_names_each_flag_as_present_or_absent():
    flags = precision.cpu_flags()  # the library's reader of /proc/cpuinfo (empty without one)
    line = common.cpu_line()
    present, _, absent = line.split("flags: ")[1].partition(" (absent: ")
    assert present.split() == [flag for flag in common.CPU_FLAGS if flag in flags] or (
        present == "none of CPU_FLAGS" and not set(flags) & set(common.CPU_FLAGS))
    assert absent.rstrip(")").split() == [flag for flag in common.CPU_FLAGS if flag not in flags]


def test_classification_training_flops_are_twice_encoder_and_head():
    config = finetune_throughput.bench_config("base", "float32", False, 16, 128)
    encoder = common.encoder_flops(config.bert_config(), config.embedding_size, 128)
    head = 4 * 768 + 2 * 768 * 3 + 3 + 5 * 3  # dropout, dense + bias, log-softmax
    assert finetune_throughput.train_flops_per_sequence(config) == 2 * (encoder + head)


def test_qa_head_flops_by_hand():
    h, s, beam, q = 2, 3, 4, 5
    start = 2 * h * s + s + 5 * s                       # dense, bias, log-softmax
    answerable = 5 * s + 2 * h * s + 2 * 2 * h * q + 9 * q + 2 * q + 1
    per_start = 2 * h * q + s * (10 * q + 2 * q + 1)     # start part; add+bias+GELU, dense_1
    train = start + answerable + per_start + 2 * h * q * s
    infer = start + answerable + beam * per_start + 2 * h * q * s + 5 * beam * s
    assert squad_throughput.qa_head_flops(h, s, beam, True, q) == train
    assert squad_throughput.qa_head_flops(h, s, beam, False, q) == infer


def test_random_features_fit_the_tasks():
    config = finetune_throughput.bench_config("tiny", "float32", False, 64, 32, task="squad")
    task = squad_throughput.tasks_lib.get_task(config, "squad", tokenizer=None)
    features = finetune_throughput.random_features(config, [task])
    starts, ends = features["squad_start_positions"], features["squad_end_positions"]
    impossible = features["squad_is_impossible"] == 1
    assert 0 < impossible.sum() < 64
    assert (starts[impossible] == 0).all() and (ends[impossible] == 0).all()
    context = features["segment_ids"][range(64), starts] == 1
    assert (context[~impossible]).all() and (ends >= starts).all() and (ends <= 30).all()
    assert features["input_ids"].max() < 1000


@pytest.mark.parametrize("bench, expected", [
    (finetune_throughput, "tiny       4 float32"), (squad_throughput, "tiny     32 infer")])
def test_smoke_run_prints_its_figures(bench, expected, capsys, machine_lines):
    policy = keras.mixed_precision.global_policy().name
    rows = bench.main(["--smoke"])
    out = capsys.readouterr().out
    machine_lines(out)
    assert "matmul peaks again, the larger kept:" in out
    assert expected in out
    assert rows and all(seqs > 0 and mfu > 0 for seqs, mfu in rows.values())
    assert keras.mixed_precision.global_policy().name == policy


def test_finetune_smoke_run_sets_plain_keras_beside_ours(capsys):
    rows = finetune_throughput.main(["--smoke"])
    out = capsys.readouterr().out
    assert "tiny       4 plain Keras float32" in out
    ratio = rows[("tiny", "float32", False)][0] / rows[("tiny", "plain Keras float32", False)][0]
    assert f"tiny: ours / plain Keras (best of each): float32 {ratio:.2f}x" in out
    finetune_throughput.main(["--smoke", "--plain-keras", "off"])
    assert "plain Keras" not in capsys.readouterr().out


BASE_SHAPED = {"model_size": "base", "vocab_size": 1000, "model_hparam_overrides": {
    "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4}}  # E unset: E = H


@pytest.mark.parametrize("sizes", [finetune_throughput.MODEL_SIZES["tiny"], BASE_SHAPED])
def test_plain_keras_baseline_is_our_network_in_keras_hub_layers(sizes):
    config = finetune_throughput.FinetuningConfig(
        "bench", "/nonexistent", task_names=["mnli"], train_batch_size=4, max_seq_length=32,
        **sizes)
    task = finetune_throughput.tasks_lib.get_task(config, "mnli", tokenizer=None)
    ours = finetune_throughput.build_finetuning_model(config, [task])
    plain = finetune_throughput.plain_keras_model(config)
    assert plain.count_params() == ours.count_params()
    features = finetune_throughput.random_features(config, [task])
    before = [w.numpy() for w in plain.trainable_weights]
    losses = [plain.train_on_batch({"token_ids": features["input_ids"],
                                    "segment_ids": features["segment_ids"],
                                    "padding_mask": features["input_mask"]},
                                   features["mnli_label_ids"]) for _ in range(2)]
    assert plain.optimizer.iterations.numpy() == 2 and all(np.isfinite(losses))
    assert all(not np.array_equal(b, w.numpy())
               for b, w in zip(before, plain.trainable_weights))


def test_plain_keras_mixed_bfloat16_computes_in_bfloat16_with_float32_logits():
    config = finetune_throughput.bench_config("tiny", "mixed_bfloat16", False, 4, 32)
    policy = keras.mixed_precision.global_policy().name
    with finetune_throughput.distribute.precision(config.precision):
        plain = finetune_throughput.plain_keras_model(config)
    assert keras.mixed_precision.global_policy().name == policy
    dense = [layer for layer in plain.layers if isinstance(layer, keras.layers.Dense)]
    assert dense[-1].dtype_policy.name == "float32" and plain.output.dtype == "float32"
    encoder = plain.get_layer("transformer_layer_0")
    assert encoder.dtype_policy.name == "mixed_bfloat16"
    assert {w.dtype for w in plain.weights} == {"float32"}


def test_bad_option_is_a_usage_error_naming_it(capsys):
    with pytest.raises(SystemExit):
        finetune_throughput.parse_args(["--precisions", "float16"])
    assert "--precisions" in capsys.readouterr().err


def test_serving_batching_smoke_run_writes_the_parameters_it_derives(tmp_path, capsys,
                                                                      machine_lines):
    output = tmp_path / "batching_parameters.txt"
    params = serving_latency.main(["--batching", "--smoke", "--output", str(output)])
    out = capsys.readouterr().out
    machine_lines(out)
    assert serving_latency.TABLE_HEADER in out
    assert serving_latency.text_proto(params) in out
    p50_ms, options = serving_latency.read_derivation(output.read_text())
    assert sorted(p50_ms) == [1, 2, 4] and options["cpu_cores"] == common.cpu_cores()
    assert serving_latency.derive_batching_parameters(p50_ms, **options)[0] == params
    fields = [line for line in output.read_text().splitlines(keepends=True)
              if not line.startswith("#")]
    assert "".join(fields) == serving_latency.text_proto(params)


def test_serving_latency_smoke_run_prints_the_cpu_and_the_dense_products_alone(
        capsys, machine_lines):
    serving_latency.main(["--smoke"])
    out = capsys.readouterr().out
    machine_lines(out)
    assert out.count("CPU: ") == 1
    alone = [line for line in out.splitlines() if serving_latency.DENSE_ALONE in line]
    assert [line.split()[1] for line in alone] == ["1", "2", "4"]
    assert all(float(line.split()[5]) >= 0 for line in alone)
    rows = [int(line.split("of ")[1].split()[0]) for line in alone]
    assert rows == [16, 32, 64]  # batch × S of the smoke classifier
    assert (f"{serving_latency.PYTORCH}: not measured (only a --classifier run has PyTorch's "
            "shapes") in out


STAND_IN_PYTORCH = """#!{python}
# Stands in for the throwaway PyTorch venv's Python: torch imports, and the script's p50 is
# 20 ms per sequence (p90, p99: 22, 24); every call is logged.
import json, sys
if sys.argv[1] == "-c":
    sys.exit({import_exit})
with open({log!r}, "a") as f:
    f.write(" ".join(sys.argv[1:]) + "\\n")
options = dict(zip(sys.argv[3::2], sys.argv[4::2]))
batch = int(options["--batch-sizes"])
print("x86_64; torch (stand-in)")
print(json.dumps({{"batch": batch, "p50_ms": 20.0 * batch, "p90_ms": 22.0 * batch,
                  "p99_ms": 24.0 * batch}}))
"""


def stand_in_pytorch(tmp_path, import_exit=0):
    """(a stand-in for `--pytorch-python`, the file that logs its calls)."""
    python, log = tmp_path / "python", tmp_path / "calls.txt"
    python.write_text(STAND_IN_PYTORCH.format(python=sys.executable, log=str(log),
                                              import_exit=import_exit))
    python.chmod(0o755)
    return python, log


def test_serving_times_pytorch_in_a_fresh_process_before_ours(tmp_path, capsys, monkeypatch):
    python, log = stand_in_pytorch(tmp_path)
    ours_ms = {1: 10.0, 2: 30.0, 4: 100.0}  # the ids signature's p50 at each batch size
    seen = []

    def fixed_percentiles(functions, iterations):
        # PyTorch's process has already run for the batch size ours are timed at
        batch = int(log.read_text().splitlines()[-1].split()[3])
        assert batch == (1, 2, 4)[len(seen)]
        seen.append(batch)
        return {name: np.array([ours_ms[batch], 1.1 * ours_ms[batch], 1.2 * ours_ms[batch]])
                / 1000 for name in functions}

    monkeypatch.setattr(serving_latency, "interleaved_percentiles", fixed_percentiles)
    ratios = serving_latency.main(["--smoke", "--classifier", "--pytorch", "on",
                                   "--pytorch-python", str(python)])
    out = capsys.readouterr().out
    assert log.read_text().splitlines() == [
        f"{serving_latency.PYTORCH_SCRIPT} --json --batch-sizes {b} --iterations 2 --seq-len 16"
        for b in (1, 2, 4)]
    assert ratios == {1: 0.5, 2: 0.75, 4: 1.25}
    lines = out.splitlines()
    for batch in (1, 2, 4):
        row = next(i for i, line in enumerate(lines)
                   if line.startswith(f"batch {batch:>3}  {serving_latency.PYTORCH}"))
        assert lines[row].split()[4:8] == [f"{20.0 * batch:.1f}", f"{22.0 * batch:.1f}",
                                           f"{24.0 * batch:.1f}", f"{1000 / 20:.1f}"]
        assert lines[row].split()[9] == f"{20.0 * batch / ours_ms[batch]:.2f}x"
        assert "a fresh process before ours; peak RSS" in lines[row]
        # printed after our three rows of that batch
        assert [line[11:31].strip() for line in lines[row - 3:row]] == [
            "direct Keras call", "SavedModel ids", "SavedModel raw text"]
    assert (f"ours (SavedModel ids) / {serving_latency.PYTORCH}, p50: batch 1 0.50x "
            "(target ≤ 0.6x: met), batch 2 0.75x, batch 4 1.25x") in out


def test_against_pytorch_line_judges_batch_one_only():
    assert serving_latency.against_pytorch_line({1: 0.82, 32: 0.78}).endswith(
        "p50: batch 1 0.82x (target ≤ 0.6x: NOT met), batch 32 0.78x")
    assert serving_latency.against_pytorch_line({32: 1.5}).endswith("p50: batch 32 1.50x")


@pytest.mark.skipif(not os.path.exists(serving_latency.PYTORCH_PYTHON),
                    reason="no throwaway PyTorch venv here (bench/pytorch_serving_latency.py)")
def test_the_real_pytorch_script_answers_in_the_form_serving_reads():
    args = serving_latency.parse_args(["--classifier", "--iterations", "2"])
    if not serving_latency.pytorch_available(args)[0]:
        pytest.skip(f"{serving_latency.PYTORCH_PYTHON} lacks torch or transformers")
    (p50, p90, p99), rss = serving_latency.pytorch_percentiles(args, 2, 16)
    assert 0 < p50 <= p90 <= p99 and rss > 2**20


def test_serving_pytorch_python_may_be_a_command_on_the_path(tmp_path, monkeypatch):
    python, _ = stand_in_pytorch(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    args = serving_latency.parse_args(["--classifier", "--pytorch", "on",
                                       "--pytorch-python", python.name])
    assert serving_latency.pytorch_available(args)[0]
    assert args.pytorch_python == str(python)


def test_serving_pytorch_on_fails_before_any_work_where_it_cannot_run(tmp_path, capsys,
                                                                      monkeypatch):
    python, log = stand_in_pytorch(tmp_path, import_exit=1)
    monkeypatch.setattr(serving_latency, "build_and_export", None)  # never reached
    for options, why in (
            (["--classifier", "--pytorch-python", str(python)],
             "`import torch, transformers` exited 1"),
            (["--classifier", "--pytorch-python", str(tmp_path / "missing" / "python")],
             "no such executable"),
            (["--pytorch-python", str(python)], "only a --classifier run"),
            (["--batching", "--classifier"], "only a --classifier run")):
        with pytest.raises(RuntimeError, match="--pytorch on, but PyTorch transformers "
                                               "cannot be measured") as error:
            serving_latency.main(["--smoke", "--pytorch", "on", *options])
        assert why in str(error.value)
    assert capsys.readouterr().out == ""
    assert not log.exists()
    args = serving_latency.parse_args(["--smoke", "--classifier", "--pytorch-python",
                                       str(python)])
    assert serving_latency.pytorch_available(args) == (False, "--smoke")


def test_dense_products_are_the_encoder_blocks_kernels(tmp_path):
    model_dir, _ = serving_latency.random_classifier_dir(
        str(tmp_path), **serving_latency.SMOKE_CLASSIFIER)
    network = serving_latency.direct_call(model_dir)[3]
    products = serving_latency.dense_products(network)
    hidden = serving_latency.SMOKE_CLASSIFIER["model_hparam_overrides"]["hidden_size"]
    ffn = [w.shape[1] for w in network.weights if "intermediate" in w.path and w.name == "kernel"]
    assert len(ffn) == 1  # the smoke classifier's one layer
    assert products[(hidden, ffn[0])] == 1 and products[(ffn[0], hidden)] == 1
    assert products[(hidden, hidden)] >= 4  # query, key, value, attention output
    seconds, count, flop = serving_latency.dense_products_seconds(network, rows=8, repeats=1)
    assert count == sum(products.values()) and seconds >= 0
    assert flop == sum(2 * 8 * k * n * c for (k, n), c in products.items())


def test_serving_batching_needs_batch_size_one(capsys):
    with pytest.raises(SystemExit):
        serving_latency.parse_args(["--batching", "--batch-sizes", "2,4"])
    assert "--batch-sizes" in capsys.readouterr().err


def test_rerank_scoring_smoke_run_prints_both_rates_and_their_ratio(capsys, machine_lines):
    rates = rerank_scoring.main(["--smoke", "--calls", "1"])
    out = capsys.readouterr().out
    machine_lines(out)
    assert "Electric / MLM pseudo-LL: " in out
    assert rates["electric"] > 0 and rates["mlm"] > 0
    assert rates["ratio"] == pytest.approx(rates["electric"] / rates["mlm"])


def test_pretrain_records_are_full_length_segment_pairs_both_readers_accept(tmp_path):
    args = pretrain_throughput.parse_args(["--smoke", "--data-dir", str(tmp_path)])
    config = pretrain_throughput.bench_config(args, args.ours[0])
    assert pretrain_throughput.write_records(config)
    assert not pretrain_throughput.write_records(config)  # existing records are kept
    vocab = tokenization.check_vocab(config.vocab_file, 1000)
    assert [vocab[t] for t in ("[CLS]", "[SEP]", "[MASK]")] == [101, 102, 103]
    batch = next(iter(reader.get_dataset(config.pretrain_tfrecords, 32, 64,
                                         is_training=False)))
    ids, segments = batch["input_ids"].numpy(), batch["segment_ids"].numpy()
    assert ids.shape == (64, 32) and (batch["input_mask"].numpy() == 1).all()
    assert (ids[:, 0] == 101).all() and (ids[:, -1] == 102).all()
    assert ((ids == 102).sum(axis=1) == 2).all()
    first_sep = np.argmax(ids == 102, axis=1)
    assert len(set(first_sep)) > 1  # the cut moves
    assert (segments == (np.arange(32) > first_sep[:, None])).all()
    words = ids[(ids != 101) & (ids != 102)]
    assert words.min() >= 104 and words.max() < 1000


def test_run_process_reports_that_processs_own_peak_rss():
    command = [sys.executable, "-c", "x = b'x' * (300 << 20); print('{\"n\": 1}')"]
    result, rss = common.run_process(command, "allocating child")
    assert result == {"n": 1} and 300 << 20 < rss < 600 << 20
    _, small = common.run_process(
        [sys.executable, "-c", "print('{}')"], "small child")
    assert small < 100 << 20  # not the earlier child's, nor this test process's
    with pytest.raises(RuntimeError, match="(?s)failing child failed \\(exit 3\\).*went wrong"):
        common.run_process(
            [sys.executable, "-c",
             "import sys; print('went wrong', file=sys.stderr); sys.exit(3)"],
            "failing child")


def test_pretrain_summary_takes_each_best_and_divides_by_the_originals():
    ours = pretrain_throughput.Ours("mixed_bfloat16", False)
    reference = original.NAME
    summary = pretrain_throughput.summarize({reference: [(10.0, 5), (12.0, 4)],
                                             ours: [(15.0, 7), (13.0, 9)]})
    assert summary == {reference: (12.0, 5, 1.0), ours: (15.0, 9, 1.25)}
    assert pretrain_throughput.summarize({ours: [(15.0, 7)]}) == {ours: (15.0, 7, None)}


def test_pretrain_original_needs_its_tools_and_a_real_model_size(tmp_path, capsys):
    args = pretrain_throughput.parse_args(["--original-tools", str(tmp_path)])
    available, why = original.available(args)
    assert not available and str(tmp_path / "orig_electra_env") in why
    args.original = "on"
    with pytest.raises(RuntimeError, match="--original on, but the original cannot run: "):
        original.available(args)
    with pytest.raises(SystemExit):
        pretrain_throughput.parse_args(["--model", "tiny", "--original", "on"])
    assert "--original on" in capsys.readouterr().err


def test_pretrain_smoke_run_measures_ours_in_a_fresh_process(tmp_path, capsys, machine_lines):
    summary = pretrain_throughput.main(["--smoke", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    machine_lines(out)
    assert "original TF1 code: not measured (--original off); ours only" in out
    assert "round 1: ours float32" in out
    [(name, (seqs, rss, ratio))] = summary.items()
    assert name == pretrain_throughput.Ours("float32", False) and ratio is None
    # A TensorFlow process's peak, not 0 nor this test process's (which the child never
    # shares).
    assert seqs > 0 and 200 << 20 < rss < os.sysconf("SC_PAGE_SIZE") * os.sysconf(
        "SC_PHYS_PAGES")


def test_build_throughput_smoke_run_times_the_tokenizer_and_both_builders(capsys,
                                                                          machine_lines):
    build_throughput.main(["--smoke"])
    out = capsys.readouterr().out
    machine_lines(out)
    assert "tokenizer alone, batches of 1000 lines" in out
    assert "builder, 1 process: " in out and "builder, 2 processes: " in out
    assert "builder(2) / builder(1) = " in out


def test_measure_table_keeps_each_rows_best_round(capsys):
    calls = iter([(10.0, 1e9, "float32"), (20.0, 1e9, "mixed_bfloat16"),
                  (12.0, 1e9, "float32"), (18.0, 1e9, "mixed_bfloat16")])
    keys = ["a", "b"]
    peaks = {"float32": 1e11, "mixed_bfloat16": 2e11}
    rows, after = common.measure_table(keys, "row", lambda key: f"{key:<3}",
                                       lambda key: next(calls), peaks, matmul_size=64,
                                       rounds=2)
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "measured" in line] == [
        "round 1: measured a: 10.00 seq/s", "round 1: measured b: 20.00 seq/s",
        "round 2: measured a: 12.00 seq/s", "round 2: measured b: 18.00 seq/s"]
    assert after == peaks  # a 64×64 product is slower than these peaks: the larger kept
    assert rows == {"a": (12.0, 12.0 * 1e9 / 1e11), "b": (20.0, 20.0 * 1e9 / 1e11)}
    assert "matmul peaks again, the larger kept:" in out
