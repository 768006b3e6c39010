"""The config base: JSON overrides, unknown names with suggestions, runtime checks."""

import pytest

from electra_tf.config import PretrainingConfig
from electra_tf.hparams import check_known, parse_hparams


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
