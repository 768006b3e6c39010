"""The one atomic-write helper: whole or absent, old content kept on failure, leftovers."""

import json
import os

import pytest

from electra_common import files


def test_write_and_read_back(tmp_path):
    path = tmp_path / "sub" / "a.json"
    files.write_json(str(path), {"x": [1, 2]})
    assert files.read_json(str(path)) == {"x": [1, 2]}
    assert path.read_text().endswith("\n")
    with pytest.raises(FileExistsError, match="a.json: exists already"):
        files.write_text(str(path), "new", overwrite=False)
    assert files.read_json(str(path)) == {"x": [1, 2]}
    assert os.listdir(path.parent) == ["a.json"]


def test_read_json_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.json: no such file"):
        files.read_json(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{1")
    with pytest.raises(ValueError, match="bad.json: invalid JSON"):
        files.read_json(str(tmp_path / "bad.json"))


def test_a_failed_write_keeps_the_old_content_and_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(target), overwrite=True) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_a_directory_is_written_whole_and_replaced_whole(tmp_path):
    target = tmp_path / "model"
    for version in ("1", "2"):
        with files.atomic_path(str(target), overwrite=version == "2") as tmp:
            os.makedirs(tmp)
            with open(os.path.join(tmp, "v"), "w") as f:
                f.write(version)
    assert (target / "v").read_text() == "2" and os.listdir(tmp_path) == ["model"]
    with pytest.raises(FileExistsError):
        with files.atomic_path(str(target)):
            pass


def test_remove_leftovers_deletes_temporaries_and_restores_a_replaced_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    open(files.temporary_path(str(tmp_path / "shard")), "w").write("half")
    # A writer killed between moving the old directory away and moving the new one in.
    old = files.temporary_path(str(tmp_path / "model"), "-old-")
    os.makedirs(old)
    open(os.path.join(old, "v"), "w").write("1")
    removed = files.remove_leftovers(str(tmp_path))
    assert len(removed) == 2
    assert sorted(os.listdir(tmp_path)) == ["keep.txt", "model"]
    assert (tmp_path / "model" / "v").read_text() == "1"
    # With the new version in place, the old copy is simply deleted.
    old = files.temporary_path(str(tmp_path / "model"), "-old-")
    os.makedirs(old)
    files.remove_leftovers(str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["keep.txt", "model"]
    assert files.remove_leftovers(str(tmp_path / "absent")) == []


def test_temporary_names_follow_the_one_scheme(tmp_path):
    name = os.path.basename(files.temporary_path(str(tmp_path / "x.json")))
    assert name.startswith(".tmp-x.json-") and len(name) == len(".tmp-x.json-") + 8
    assert json.dumps(name)  # a plain file name


def test_remove_leftovers_of_named_targets_only(tmp_path):
    (tmp_path / ".tmp-mine.json-0123abcd").write_text("half")
    (tmp_path / ".tmp-theirs.json-0123abcd").write_text("half")
    assert files.remove_leftovers(str(tmp_path), ["mine"]) == [".tmp-mine.json-0123abcd"]
    assert sorted(os.listdir(tmp_path)) == [".tmp-theirs.json-0123abcd"]
