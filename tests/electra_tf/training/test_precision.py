"""`precision: "auto"`: what it picks on each kind of hardware, and the line that says why."""

import pytest

from electra_tf.config import PretrainingConfig
from electra_tf.training import precision


@pytest.mark.parametrize("use_tpu, capability, flags, expected", [
    (True, (), set(), "mixed_bfloat16"),
    (False, (8, 0), set(), "mixed_bfloat16"),
    (False, (7, 5), set(), "mixed_float16"),
    (False, (6, 1), set(), "float32"),
    (False, (), {"avx512f", "avx512_bf16"}, "mixed_bfloat16"),
    (False, (), {"amx_bf16"}, "mixed_bfloat16"),
    (False, (), {"avx512f", "avx2"}, "float32"),
])
def test_auto_picks_by_hardware(use_tpu, capability, flags, expected):
    chosen, why = precision.choose(use_tpu, gpu_capability=capability, flags=flags)
    assert chosen == expected
    assert why


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_tile\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "avx512_bf16", "amx_tile"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()


def test_cpuinfo_gives_the_first_value_of_a_key(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu\n"
                       "processor\t: 1\nmodel name\t: other\n")
    assert precision.cpuinfo("model name", str(cpuinfo)) == "AMD EPYC"
    assert precision.cpuinfo("bogus", str(cpuinfo)) is None
    assert precision.cpuinfo("flags", str(tmp_path / "missing")) is None


def test_an_auto_config_is_resolved_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "choose", lambda use_tpu: ("mixed_bfloat16", "reason"))
    config = PretrainingConfig("m", str(tmp_path), precision="auto")
    assert config.precision == "mixed_bfloat16"
    assert config.precision_line() == "precision auto: mixed_bfloat16 (reason)"
    assert PretrainingConfig("m", str(tmp_path)).precision_line() == "precision: float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        PretrainingConfig("m", str(tmp_path), precision="bfloat16")
