"""Where pretraining text comes from: corpus files, tar archives, tensorflow-datasets.

A source hands each build process its *units*, what the original calls input files: a
name and a function returning the unit's bytes in chunks. The end of a unit is always a
document boundary. `line_lists` reads a unit as its stripped lines and stops at invalid
UTF-8 with an error that names the file and the line.

Sources are small picklable values, so that a build can send them to worker processes:
- `TextFiles(paths)`: each file is a unit (the original builder's input);
- `TarArchives(paths)`: each regular file inside the archives is a unit (OpenWebText);
- `TfdsDataset(name, split, text_feature)`: each example of a prepared dataset is a unit.
"""

import collections
import dataclasses
import os
import tarfile

import tensorflow as tf

_READ_CHUNK_BYTES = 1 << 16

# `chunks()` returns an iterator over the unit's bytes.
Unit = collections.namedtuple("Unit", ["name", "chunks"])


class CorpusError(ValueError):
    """Bad input data (the message names the file, and the line where it applies)."""


@dataclasses.dataclass
class ReadCounts:
    """What `line_lists` counts: bytes read, and lines skipped as invalid UTF-8."""
    bytes_read: int = 0
    skipped_lines: int = 0


def list_corpus_files(corpus_dir):
    """The original's file listing: every file of `corpus_dir`, sorted by name.

    Raises:
      FileNotFoundError: if `corpus_dir` does not exist or is not a directory.
      CorpusError: if it contains no files.
    """
    if not tf.io.gfile.isdir(corpus_dir):
        raise FileNotFoundError("Corpus directory not found: %s" % corpus_dir)
    names = sorted(tf.io.gfile.listdir(corpus_dir))
    paths = [os.path.join(corpus_dir, n.rstrip("/")) for n in names]
    paths = [p for p in paths if not tf.io.gfile.isdir(p)]
    if not paths:
        raise CorpusError("Corpus directory %s contains no files" % corpus_dir)
    return paths


def file_unit(path):
    """One file as a unit, read in chunks (any `tf.io.gfile` file system)."""
    def chunks():
        with tf.io.gfile.GFile(path, "rb") as f:
            while True:
                chunk = f.read(_READ_CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk
    return Unit(path, chunks)


def tar_units(archive_path, rng):
    """Yields the regular files of a tar archive as units, in the original's shuffled order.

    The original extracts each archive to `<data-dir>/tmp/job_<j>` and shuffles the
    listing; the members are read in place here (no temporary copies, nothing to wipe).
    """
    # Read the members in archive order (random access into a compressed stream would
    # decompress it again and again); an OpenWebText archive is a few MB.
    members = []
    with tf.io.gfile.GFile(archive_path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
        for member in tar:
            if member.isfile():
                members.append((member.name, tar.extractfile(member).read()))
    members.sort()
    rng.shuffle(members)
    for name, data in members:
        yield Unit("%s:%s" % (archive_path, name), lambda data=data: iter([data]))


def _describe(paths):
    return ", ".join(map(str, paths[:3])) + (", ..." if len(paths) > 3 else "")


@dataclasses.dataclass(frozen=True)
class TextFiles:
    """Text files, one unit each. Process j of n reads the files j, j + n, ..."""
    paths: tuple

    def units(self, job_id, num_jobs, rng):
        """Yields the units of process `job_id` of `num_jobs`; `rng` orders them."""
        paths = list(self.paths[job_id::num_jobs])
        rng.shuffle(paths)  # as the original: each process reads its files in shuffled order
        for path in paths:
            yield from self._units_of(path, rng)

    def _units_of(self, path, rng):
        del rng  # a file is one unit
        yield file_unit(path)

    def total_bytes(self):
        return sum(tf.io.gfile.stat(p).length for p in self.paths)

    def __str__(self):
        return _describe(self.paths)


class TarArchives(TextFiles):
    """Tar archives of text files (any compression `tarfile` reads); each member is a unit."""

    def _units_of(self, path, rng):
        return tar_units(path, rng)


@dataclasses.dataclass(frozen=True)
class TfdsDataset:
    """A text feature of a prepared tensorflow-datasets dataset; each example is a unit.

    Nothing is downloaded: the dataset must already be built in `data_dir` (default:
    tensorflow-datasets' default). Process j of n reads the examples j, j + n, ...
    """
    name: str             # with config/version, e.g. "wikipedia/20230601.en"
    split: str            # e.g. "train" or "train[:10%]"
    text_feature: str     # e.g. "text"
    data_dir: str = None

    def units(self, job_id, num_jobs, rng):
        """Yields one unit per example of this process's share.

        Raises:
          CorpusError: if the dataset cannot be loaded (not prepared, unknown), or has no
            feature `text_feature` (naming those it has).
        """
        del rng  # the dataset's order
        import tensorflow_datasets as tfds  # noqa: PLC0415 (slow to import; only for tfds)
        try:
            ds = tfds.load(self.name, split=self.split, data_dir=self.data_dir,
                           shuffle_files=False, download=False)
        except Exception as e:  # tfds raises AssertionError, DatasetNotFoundError, ...
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise CorpusError(f"tfds dataset {self.name} (split {self.split}, data_dir "
                              f"{self.data_dir or 'the tfds default'}) cannot be loaded; it "
                              f"must be prepared there first: {first_line}") from None
        if self.text_feature not in ds.element_spec:
            raise CorpusError("Dataset %s has no feature %r; it has %s"
                              % (self.name, self.text_feature, sorted(ds.element_spec)))
        feature = self.text_feature
        ds = ds.shard(num_jobs, job_id).map(lambda example: example[feature])
        for index, text in enumerate(ds.as_numpy_iterator()):
            name = "%s/%s[%d]" % (self.name, self.split, index * num_jobs + job_id)
            yield Unit(name, lambda text=text: iter([text]))

    def total_bytes(self):
        return 0  # unknown before reading

    def __str__(self):
        return "%s/%s, feature %s" % (self.name, self.split, self.text_feature)


def line_lists(unit, skip_invalid_lines=False, counts=None):
    """Yields lists of the stripped lines of one unit, split on "\\n" only (as tf.io.gfile).

    Args:
      unit: a `Unit`.
      skip_invalid_lines: drop lines that are not valid UTF-8 instead of failing.
      counts: an object whose `bytes_read` and `skipped_lines` are incremented (a
        `ReadCounts`, or a build's summary); None to count nothing.

    Raises:
      CorpusError: naming the file and line of the first invalid UTF-8 byte.
    """
    counts = counts if counts is not None else ReadCounts()
    line_no = 0
    rest = b""
    for data, is_last in _with_last(unit.chunks()):
        data = rest + data
        if not is_last:
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
        counts.bytes_read += len(data)
        try:
            lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError as e:
            if not skip_invalid_lines:
                bad_line = line_no + data.count(b"\n", 0, e.start) + 1
                raise CorpusError(
                    "%s, line %d: invalid UTF-8 (%s). The original builder stops here too "
                    "(tf.io.gfile text mode raises UnicodeDecodeError); fix the file, e.g. "
                    "with `iconv -f <encoding> -t utf-8`, or pass --skip-invalid-lines."
                    % (unit.name, bad_line, e.reason)) from None
            lines = _valid_lines(data, counts)
        if not is_last or (lines and lines[-1] == ""):
            lines.pop()  # the text after the last "\n" (empty, or carried to the next chunk)
        line_no += len(lines)
        # Python's str.strip(), exactly as the original's `line.strip()`.
        yield [line.strip() for line in lines]


def corpus_lines(corpus_dir):
    """Yields the stripped lines of every file of `corpus_dir`, in file-name order.

    Raises:
      FileNotFoundError, CorpusError: as `list_corpus_files` and `line_lists`.
    """
    for path in list_corpus_files(corpus_dir):
        for lines in line_lists(file_unit(path)):
            yield from lines


def _with_last(iterator):
    """Yields (item, is_last) pairs; a single (b"", True) for an empty iterator."""
    previous = None
    for item in iterator:
        if previous is not None:
            yield previous, False
        previous = item
    yield (previous if previous is not None else b""), True


def _valid_lines(data, counts):
    """The lines of `data` that decode as UTF-8; the others are counted as skipped."""
    lines = []
    for raw_line in data.split(b"\n"):
        try:
            lines.append(raw_line.decode("utf-8"))
        except UnicodeDecodeError:
            counts.skipped_lines += 1
    return lines
