"""The config base: JSON overrides, unknown names with suggestions, runtime checks, the
hparam listing (`describe`, `--list-hparams`) and its meanings."""

import re
import subprocess
import sys

import pytest

from electra_tf.config import PretrainingConfig
from electra_tf.hparams import check_known, parse_hparams
from finetune.config import FinetuningConfig
from tests.conftest import REPO

CONFIGS = {"electra_tf.run_pretraining": (PretrainingConfig, "docs/configuration.md"),
           "finetune.run_finetuning": (FinetuningConfig, "docs/finetuning.md")}


def test_parse_hparams(tmp_path):
    assert parse_hparams('{"debug": true}') == {"debug": True}
    assert parse_hparams(None) == {}
    path = tmp_path / "h.json"
    path.write_text('{"model_size": "base"}')
    assert parse_hparams(str(path)) == {"model_size": "base"}
    with pytest.raises(FileNotFoundError, match="missing.json"):
        parse_hparams(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="valid JSON"):
        parse_hparams("{debug: true}")
    (tmp_path / "bad.json").write_text("[1, 2")
    with pytest.raises(ValueError, match="bad.json: invalid JSON"):
        parse_hparams(str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="JSON object"):
        parse_hparams("[1]")


def test_unknown_names_suggest_the_closest_known_one():
    with pytest.raises(ValueError, match=r"Unknown hparam: learnig_rate \(did you mean "
                                         r"learning_rate\?\)"):
        PretrainingConfig("m", "d", learnig_rate=1e-3)
    with pytest.raises(ValueError, match=r"Unknown hparams: qqq, zzz$"):
        check_known({"qqq": 1, "zzz": 2}, {"learning_rate"}, "hparam")


@pytest.mark.parametrize("field,value", [("strategy", "horovod"), ("precision", "fp8"),
                                         ("model_size", "huge")])
def test_invalid_choices_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"{field} must be one of"):
        PretrainingConfig("m", "d", **{field: value})


@pytest.mark.parametrize("config_cls", [PretrainingConfig, FinetuningConfig])
def test_every_field_has_a_meaning_and_every_meaning_a_field(config_cls):
    fields = set(config_cls("m", "/tmp/d").to_dict())
    assert fields - set(config_cls.MEANINGS) == set(), "fields without a meaning"
    assert set(config_cls.MEANINGS) - fields == set(), "meanings of no field"
    assert all(config_cls.MEANINGS.values())


def documented_fields(path):
    """The names in the first column of the doc's `| field | default ...` tables."""
    names, in_table = set(), False
    for line in (REPO / path).read_text(encoding="utf-8").splitlines():
        if line.startswith("| field | default"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            names.update(re.findall(r"`(\w+)`", line.split("|")[1]))
    return names


@pytest.mark.parametrize("config_cls,doc", CONFIGS.values())
def test_the_docs_tables_list_the_fields_with_meanings(config_cls, doc):
    assert documented_fields(doc) == set(config_cls.MEANINGS)


def test_describe_lists_defaults_values_and_meanings():
    rows = PretrainingConfig.hparam_table({"debug": True})
    table = {name: (default, value) for name, default, value, _ in rows}
    assert table["train_batch_size"] == ("128", "8") and table["learning_rate"] == ("0.0005",) * 2
    assert table["model_size"] == ('"small"',) * 2 and table["seed"] == ("null", "null")
    assert [name for name, *_ in rows][:3] == ["model_name", "debug", "do_train"]  # config order
    text = PretrainingConfig.describe({"debug": True}, width=100)
    assert text.splitlines()[1].split() == ["hparam", "default", "value", "meaning"]
    assert re.search(r"\ntrain_batch_size +128 +8 +global batch \(all replicas", text)
    assert all(len(line) <= 100 for line in text.splitlines() if "/" not in line)  # not paths
    plain = FinetuningConfig.describe()
    assert plain.splitlines()[1].split() == ["hparam", "default", "meaning"]
    assert re.search(r"\nlearning_rate +0.0001 +peak LR", plain)
    with pytest.raises(ValueError, match="did you mean learning_rate"):
        FinetuningConfig.describe({"learning_rat": 1})


LISTING = """
import atexit, runpy, sys
atexit.register(lambda: print("TENSORFLOW", "tensorflow" in sys.modules))
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_module(sys.argv[0], run_name="__main__")
"""


def command(module, *argv):
    """Runs `python -m module argv` (a real command process); reports TensorFlow's import."""
    result = subprocess.run([sys.executable, "-c", LISTING, module, *argv], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    out, _, tensorflow = result.stdout.rpartition("TENSORFLOW ")
    return result.returncode, out, result.stderr, tensorflow.strip() == "True"


@pytest.mark.parametrize("module", sorted(CONFIGS))
def test_a_misspelt_hparam_fails_in_one_line_before_tensorflow(module, tmp_path):
    code, _, err, tensorflow = command(module, "--data-dir", str(tmp_path), "--model-name", "m",
                                       "--hparams", '{"learning_rat": 1e-4}')
    assert (code, err, tensorflow) == (
        1, "error: Unknown hparam: learning_rat (did you mean learning_rate?)\n", False)


@pytest.mark.parametrize("module", sorted(CONFIGS))
def test_list_hparams_needs_no_other_flag(module):
    config_cls = CONFIGS[module][0]
    code, out, err, tensorflow = command(module, "--list-hparams")
    assert (code, err, tensorflow) == (0, "", False)
    listed = {line.split()[0] for line in out.splitlines()[2:] if not line.startswith(" ")}
    assert listed == set(config_cls.MEANINGS)
    code, out, _, _ = command(module, "--list-hparams", "--hparams", '{"learning_rate": 0.003}')
    assert code == 0 and re.search(r"\nlearning_rate +\S+ +0.003 ", out), out
