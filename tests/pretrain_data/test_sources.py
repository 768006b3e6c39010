"""Corpus sources: file listing, units, the line reader and its errors."""

import io
import random
import tarfile

import pytest

from pretrain_data import sources


def bytes_unit(data, chunk=3, name="mem.txt"):
    """A unit whose bytes come in chunks of `chunk` bytes (to cut lines and characters)."""
    return sources.Unit(name, lambda: iter([data[i:i + chunk]
                                            for i in range(0, len(data), chunk)]))


def read_all(unit, **kwargs):
    return [line for lines in sources.line_lists(unit, **kwargs) for line in lines]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1000])
def test_lines_split_on_newline_only_and_stripped_across_chunks(chunk):
    data = "  naïve café \r\nx\u2028y\n\n  \nlast".encode("utf-8")
    counts = sources.ReadCounts()
    assert read_all(bytes_unit(data, chunk), counts=counts) == [
        "naïve café", "x\u2028y", "", "", "last"]
    assert counts == sources.ReadCounts(bytes_read=len(data), skipped_lines=0)
    assert read_all(bytes_unit(b"a\n", chunk)) == ["a"]  # no empty line after a final "\n"
    assert read_all(bytes_unit(b"", chunk)) == []


def test_invalid_utf8_names_the_line_or_is_skipped():
    data = b"ok\nstill ok\ncaf\xe9\nafter\n"
    with pytest.raises(sources.CorpusError, match=r"^mem.txt, line 3: invalid UTF-8 .*"
                                                  r"--skip-invalid-lines"):
        read_all(bytes_unit(data, chunk=4))
    counts = sources.ReadCounts()
    assert read_all(bytes_unit(data, chunk=4), skip_invalid_lines=True, counts=counts) == [
        "ok", "still ok", "after"]
    assert counts.skipped_lines == 1


def test_list_corpus_files_and_corpus_lines(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        sources.list_corpus_files(str(tmp_path / "nope"))
    (tmp_path / "sub").mkdir()
    with pytest.raises(sources.CorpusError, match="contains no files"):
        sources.list_corpus_files(str(tmp_path))
    (tmp_path / "b.txt").write_text("b1\n\nb2\n", encoding="utf-8")
    (tmp_path / "a.txt").write_text(" a1 \n", encoding="utf-8")
    assert sources.list_corpus_files(str(tmp_path)) == [str(tmp_path / "a.txt"),
                                                         str(tmp_path / "b.txt")]
    assert list(sources.corpus_lines(str(tmp_path))) == ["a1", "b1", "", "b2"]


def test_text_files_split_between_jobs_in_shuffled_order(tmp_path):
    paths = []
    for i in range(7):
        paths.append(str(tmp_path / ("%d.txt" % i)))
        (tmp_path / ("%d.txt" % i)).write_text("line %d\n" % i)
    source = sources.TextFiles(tuple(paths))
    names = [[unit.name for unit in source.units(j, 3, random.Random(5))] for j in range(3)]
    assert [sorted(n) for n in names] == [sorted(paths[j::3]) for j in range(3)]
    expected = list(paths[0::3])
    random.Random(5).shuffle(expected)
    assert names[0] == expected
    assert source.total_bytes() == 7 * len("line 0\n")
    assert str(source).endswith(", ...")


def test_tar_archive_members_are_units(tmp_path):
    archive = tmp_path / "a.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name in ["z.txt", "a.txt", "m.txt"]:
            data = ("text of %s\n" % name).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        directory = tarfile.TarInfo("dir")
        directory.type = tarfile.DIRTYPE
        tar.addfile(directory)  # a directory entry is no unit
    units = list(sources.TarArchives((str(archive),)).units(0, 1, random.Random(1)))
    expected = ["a.txt", "m.txt", "z.txt"]
    rng = random.Random(1)
    rng.shuffle([str(archive)])  # the job's archives are shuffled first, then each listing
    rng.shuffle(expected)
    assert [u.name for u in units] == ["%s:%s" % (archive, m) for m in expected]
    assert [read_all(u) for u in units] == [["text of %s" % m] for m in expected]
