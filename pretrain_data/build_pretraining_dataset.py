"""Writes pretraining examples (TFRecords) from raw text, as the original ELECTRA builder.

Same flags, segmentation and output as the original `build_pretraining_dataset.py`
(spec §7.2): every file of `--corpus-dir` is read line by line, lines are tokenized,
packed into `[CLS] A [SEP] B [SEP]` examples of `--max-seq-length` ids and written
round-robin into `pretrain_data.tfrecord-<i>-of-<n>` shards with the features
`input_ids`, `input_mask`, `segment_ids` (int64).

Differences from the original, all additions:
  * `--seed` makes the output reproducible (for a given seed, corpus, number of
    processes and shards); without it, as the original, every run differs.
  * lines are tokenized in batches with the graph tokenizer (the same ids as one by one);
  * a progress line with tokens/s, and a summary at the end;
  * `--num-out-files` (default 1000 as the original);
  * the output directory is never wiped: shards are written under temporary names
    and renamed when every process has succeeded; on failure only the files this
    run wrote are removed. Existing shards are an error unless `--overwrite`.
  * clear errors naming the file for a missing corpus/vocab, a vocab without the
    special tokens, an empty corpus, an unwritable output directory and invalid
    UTF-8 (file and line). The original reads with `tf.io.gfile` in text mode and
    crashes with a bare `UnicodeDecodeError` on the first invalid byte; we also stop,
    but say where (`--skip-invalid-lines` drops such lines instead).

Usage:
  python -m pretrain_data.build_pretraining_dataset --corpus-dir corpus/ \\
      --vocab-file vocab.txt --output-dir pretrain_tfrecords --seed 1
"""

import argparse
import concurrent.futures
import dataclasses
import gc
import multiprocessing
import os
import random
import sys
import tarfile
import time

import tensorflow as tf

from pretrain_data import examples as examples_lib
from pretrain_data import tokenization

SHARD_PREFIX = "pretrain_data.tfrecord"
_TMP_SUFFIX = ".incomplete"
# Lines per tokenizer call: large enough to amortise the graph call, small enough
# to keep memory flat.
_BATCH_LINES = 2048
_READ_CHUNK_BYTES = 1 << 16


class CorpusError(ValueError):
    """Bad input data (the message names the file, and the line where it applies)."""


@dataclasses.dataclass
class BuildSummary:
    """What a build wrote. `tokens` counts WordPiece tokens of the input lines."""
    files: int = 0
    documents: int = 0
    lines: int = 0
    tokens: int = 0
    examples: int = 0
    single_segment_examples: int = 0
    real_tokens_written: int = 0      # including [CLS]/[SEP]
    truncated_tokens: int = 0         # dropped by truncation (as the original)
    skipped_lines: int = 0            # invalid UTF-8, with skip_invalid_lines only
    bytes_read: int = 0
    seconds: float = 0.0              # wall time of the whole build
    steady_seconds: float = 0.0       # the slowest process, after its start-up
    max_seq_length: int = 0
    shards: tuple = ()

    @property
    def padding_fraction(self):
        total = self.examples * self.max_seq_length
        return 1.0 - self.real_tokens_written / total if total else 0.0

    @property
    def tokens_per_second(self):
        return self.tokens / self.seconds if self.seconds else 0.0

    def merge(self, other):
        for field in dataclasses.fields(self):
            if field.name in ("seconds", "max_seq_length", "shards"):
                continue
            if field.name == "steady_seconds":
                self.steady_seconds = max(self.steady_seconds, other.steady_seconds)
                continue
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))
        self.max_seq_length = other.max_seq_length or self.max_seq_length

    def __str__(self):
        examples = max(self.examples, 1)
        return ("%d files, %d documents, %d lines, %d tokens -> %d examples in %d shards "
                "(%.1f%% single-segment, %.1f%% padding, %d tokens truncated%s) in %.1fs, "
                "%.0f tokens/s (%.0f after start-up)" % (
                    self.files, self.documents, self.lines, self.tokens, self.examples,
                    len(self.shards), 100.0 * self.single_segment_examples / examples,
                    100.0 * self.padding_fraction, self.truncated_tokens,
                    ", %d invalid lines skipped" % self.skipped_lines if self.skipped_lines else "",
                    self.seconds, self.tokens_per_second,
                    self.tokens / self.steady_seconds if self.steady_seconds else 0.0))


# ------------------------------------------------------------------ input sources
#
# A "unit" is what the original calls an input file: a name and its bytes (read in
# chunks). Its end is always a document boundary. Sources make lists of units
# (plain files, members of tar archives, tfds examples); jobs read them in order.


def _file_unit(path):
    def chunks():
        with tf.io.gfile.GFile(path, "rb") as f:
            while True:
                chunk = f.read(_READ_CHUNK_BYTES)
                if not chunk:
                    return
                yield chunk
    return path, chunks


def _tar_units(archive_path, rng):
    """Yields the regular files of a tar archive as units, in the original's shuffled order.

    The original extracts each archive to `<data-dir>/tmp/job_<j>` and shuffles the
    listing; we read the members in place (no temporary copies, nothing to wipe).
    """
    # Read the members in archive order (random access into a compressed stream would
    # decompress it again and again); an OpenWebText archive is a few MB.
    files = []
    with tf.io.gfile.GFile(archive_path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
        for member in tar:
            if member.isfile():
                files.append((member.name, tar.extractfile(member).read()))
    files.sort()
    rng.shuffle(files)
    for name, data in files:
        yield "%s:%s" % (archive_path, name), (lambda data=data: iter([data]))


def _line_lists_of_unit(name, chunks, skip_invalid_lines, summary):
    """Yields lists of the stripped lines of one unit, split on "\\n" only (as tf.io.gfile).

    Raises:
      CorpusError: naming the file and line of the first invalid UTF-8 byte.
    """
    line_no = 0
    rest = b""
    for chunk in _with_last(chunks()):
        data, is_last = chunk
        data = rest + data
        if not is_last:
            cut = data.rfind(b"\n") + 1
            data, rest = data[:cut], data[cut:]
        summary.bytes_read += len(data)
        try:
            lines = data.decode("utf-8").split("\n")
        except UnicodeDecodeError as e:
            lines = _decode_lines_reporting_errors(data, name, line_no, e, skip_invalid_lines,
                                                   summary)
        if not is_last or (lines and lines[-1] == ""):
            lines.pop()  # the text after the last "\n" (empty, or carried to the next chunk)
        line_no += len(lines)
        # Python's str.strip(), exactly as the original's `line.strip()`.
        yield [line.strip() for line in lines]


def _with_last(iterator):
    """Yields (item, is_last) pairs; a single (b"", True) for an empty iterator."""
    previous = None
    for item in iterator:
        if previous is not None:
            yield previous, False
        previous = item
    yield (previous if previous is not None else b""), True


def _decode_lines_reporting_errors(data, name, first_line_no, error, skip, summary):
    if not skip:
        bad_line = first_line_no + data.count(b"\n", 0, error.start) + 1
        raise CorpusError(
            "%s, line %d: invalid UTF-8 (%s). The original builder stops here too "
            "(tf.io.gfile text mode raises UnicodeDecodeError); fix the file, e.g. with "
            "`iconv -f <encoding> -t utf-8`, or pass --skip-invalid-lines."
            % (name, bad_line, error.reason))
    lines = []
    for raw_line in data.split(b"\n"):
        try:
            lines.append(raw_line.decode("utf-8"))
        except UnicodeDecodeError:
            summary.skipped_lines += 1
            lines.append(None)
    return [line for line in lines if line is not None]


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


# ------------------------------------------------------------------ one job


@dataclasses.dataclass
class _JobSpec:
    job_id: int
    num_jobs: int
    kind: str                 # "files", "tars" or "tfds"
    inputs: list              # paths (files/tars) or (name, split, feature, data_dir)
    vocab_file: str
    output_dir: str
    max_seq_length: int
    blanks_separate_docs: bool
    do_lower_case: bool
    strip_accents: bool
    num_out_files: int
    seed: object
    skip_invalid_lines: bool


def shard_path(output_dir, index, num_out_files):
    return os.path.join(output_dir, "%s-%d-of-%d" % (SHARD_PREFIX, index, num_out_files))


def _job_rng(seed, job_id):
    # A string seed is hashed with SHA-512: stable across runs and Python versions.
    return random.Random("%s:%d" % (seed, job_id)) if seed is not None else random.Random()


def _units_for_job(spec, rng):
    if spec.kind == "files":
        paths = list(spec.inputs)
        rng.shuffle(paths)  # as the original: the job's files in shuffled order
        for path in paths:
            yield _file_unit(path)
    elif spec.kind == "tars":
        paths = list(spec.inputs)
        rng.shuffle(paths)
        for path in paths:
            yield from _tar_units(path, rng)
    else:
        from pretrain_data import tfds_source  # tensorflow-datasets only when needed
        yield from tfds_source.units(*spec.inputs, job_id=spec.job_id, num_jobs=spec.num_jobs)


def _line_batches(spec, rng, summary):
    """Yields lists of items: a stripped line (str; "" is blank), or None at a unit's end."""
    batch = []
    for name, chunks in _units_for_job(spec, rng):
        summary.files += 1
        previous = ""  # the previous kept line of this unit; "" at a document start
        for lines in _line_lists_of_unit(name, chunks, spec.skip_invalid_lines, summary):
            summary.lines += len(lines)
            if spec.blanks_separate_docs:
                # a document starts at a non-blank line after a blank one (or the start)
                summary.documents += sum(1 for before, line in zip([previous] + lines, lines)
                                         if line and not before)
            else:  # blank lines are dropped; the unit is one document
                lines = [line for line in lines if line]
                summary.documents += bool(lines) and not previous
            if lines:
                previous = lines[-1]
            batch += lines
            if len(batch) >= _BATCH_LINES:
                yield batch
                batch = []
        batch.append(None)
    if batch:
        yield batch


def _run_job(spec, progress=None):
    """One process of the build: reads its inputs, writes its shards (temporary names).

    Args:
      spec: a `_JobSpec`.
      progress: optional callable(bytes_read, tokens, examples) with increments.

    Returns:
      (BuildSummary, list of temporary shard paths written).
    """
    tokenizer = tokenization.FullTokenizer(spec.vocab_file, spec.do_lower_case, spec.strip_accents)
    vocab = tokenizer.vocab
    tokenization.check_special_tokens(vocab, spec.vocab_file)
    rng = _job_rng(spec.seed, spec.job_id)
    builder = examples_lib.ExampleBuilder(spec.max_seq_length, rng)
    serializer = examples_lib.ExampleSerializer(vocab["[CLS]"], vocab["[SEP]"], spec.max_seq_length,
                                                max(tokenizer.inv_vocab) + 1)
    summary = BuildSummary(max_seq_length=spec.max_seq_length)
    paths = [shard_path(spec.output_dir, i, spec.num_out_files) + _TMP_SUFFIX
             for i in range(spec.num_out_files) if i % spec.num_jobs == spec.job_id]
    writers = []
    start = None
    # The loop allocates millions of small lists (token ids) but no reference cycles;
    # Python's cyclic GC would otherwise rescan the ever-larger heap again and again.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        writers = [tf.io.TFRecordWriter(p) for p in paths]
        n_written = 0
        reported = (0, 0, 0)
        for batch in _line_batches(spec, rng, summary):
            values, row_splits = tokenizer.tokenize_lines([line for line in batch if line],
                                                          flat=True)
            if start is None:
                start = time.time()  # steady-state time, after start-up and the first batch
            new_examples = builder.add_lines(batch, values, row_splits)
            for raw in serializer.serialize_batch(new_examples):
                writers[n_written % len(writers)].write(raw)
                n_written += 1
            content = sum(len(a) + len(b) for a, b in new_examples)
            two_segments = sum(1 for _, b in new_examples if b)
            summary.real_tokens_written += content + 2 * len(new_examples) + two_segments
            summary.single_segment_examples += len(new_examples) - two_segments
            summary.truncated_tokens -= content
            if progress:
                now = (summary.bytes_read, builder.tokens_added, n_written)
                progress(*(a - b for a, b in zip(now, reported)))
                reported = now
        summary.examples = n_written
    finally:
        if gc_was_enabled:
            gc.enable()
        for writer in writers:
            writer.close()
    summary.tokens = builder.tokens_added
    summary.truncated_tokens += summary.tokens
    summary.steady_seconds = time.time() - start if start else 0.0
    return summary, paths


# ------------------------------------------------------------------ progress

_shared_counters = None


def _init_worker(counters):
    global _shared_counters
    _shared_counters = counters


def _worker_progress(bytes_read, tokens, examples):
    for counter, increment in zip(_shared_counters, (bytes_read, tokens, examples)):
        with counter.get_lock():
            counter.value += increment


def _run_job_in_worker(spec):
    # Each worker is one process doing sequential work; keep TF to one thread so that
    # N processes use N cores without oversubscription.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return _run_job(spec, _worker_progress)


def _start_method():
    """"fork" while this process has not started TensorFlow's runtime, else "spawn".

    Forking is fast (workers need not import TensorFlow again, ~3 s each), but forking
    a process whose TF runtime already runs threads can deadlock the children. The
    command line never runs a TF op before starting its workers (it only uses
    tf.io.gfile); a Python caller that already did (a notebook, the tests) gets
    "spawn".
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    try:
        from tensorflow.python.eager import context  # pylint: disable=g-direct-tensorflow-import
        started = context._context is not None and context._context._context_handle is not None
    except (ImportError, AttributeError):
        started = True
    return "spawn" if started else "fork"


class _ProgressPrinter:
    """Prints `[====>   ] 45% 9.0/20.0 MB, 1.2M tokens/s, 12,345 examples, ETA 0:12`."""

    def __init__(self, total_bytes, stream=sys.stderr, enabled=True):
        self._total = total_bytes
        self._stream = stream
        self._enabled = enabled
        self._tty = getattr(stream, "isatty", lambda: False)()
        self._start = time.time()
        self._last = 0.0
        self.bytes = self.tokens = self.examples = 0

    def update(self, bytes_read, tokens, examples, force=False):
        self.bytes, self.tokens, self.examples = bytes_read, tokens, examples
        now = time.time()
        if not self._enabled or (not force and now - self._last < (0.5 if self._tty else 10.0)):
            return
        self._last = now
        elapsed = max(now - self._start, 1e-9)
        fraction = min(1.0, bytes_read / self._total) if self._total else 0.0
        bar = "=" * int(30 * fraction)
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else 0.0
        line = "[%-30s] %5.1f%% %.1f/%.1f MB, %.2fM tokens/s, %d examples, ETA %d:%02d" % (
            bar[:-1] + ">" if bar else "", 100 * fraction, bytes_read / 1e6, self._total / 1e6,
            tokens / elapsed / 1e6, examples, eta // 60, eta % 60)
        self._stream.write(("\r" + line) if self._tty else (line + "\n"))
        self._stream.flush()

    def add(self, bytes_read, tokens, examples):
        self.update(self.bytes + bytes_read, self.tokens + tokens, self.examples + examples)

    def close(self):
        self.update(self.bytes, self.tokens, self.examples, force=True)
        if self._enabled and self._tty:
            self._stream.write("\n")


# ------------------------------------------------------------------ driver


def _prepare_output_dir(output_dir, num_out_files, overwrite):
    """Creates `output_dir` and checks it can be written and holds no foreign shards."""
    try:
        tf.io.gfile.makedirs(output_dir)
    except (tf.errors.OpError, OSError) as e:
        raise PermissionError("Cannot create output directory %s: %s" % (output_dir, e)) from None
    probe = os.path.join(output_dir, ".write_test-%d" % os.getpid())
    try:
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        raise PermissionError("Output directory %s is not writable: %s" % (output_dir, e)) from None
    ours = {os.path.basename(shard_path(output_dir, i, num_out_files))
            for i in range(num_out_files)}
    existing = [n for n in tf.io.gfile.listdir(output_dir) if n.startswith(SHARD_PREFIX)]
    foreign = sorted(n for n in existing if n not in ours)
    if foreign:
        raise FileExistsError(
            "Output directory %s holds shards this build would not overwrite (%s%s); they "
            "would be mixed into the training data. This tool never deletes files it did "
            "not write: remove them yourself." % (output_dir, ", ".join(foreign[:3]),
                                                  ", ..." if len(foreign) > 3 else ""))
    if existing and not overwrite:
        raise FileExistsError("Output directory %s already holds %d shards (%s, ...); pass "
                              "--overwrite to replace them."
                              % (output_dir, len(existing), existing[0]))


def _total_bytes(kind, inputs):
    if kind == "tfds":
        return 0
    return sum(tf.io.gfile.stat(p).length for p in inputs)


def run_build(kind, inputs, vocab_file, output_dir, max_seq_length=128, num_processes=1,
              blanks_separate_docs=True, do_lower_case=True, strip_accents=True,
              num_out_files=1000, seed=None, overwrite=False, skip_invalid_lines=False,
              progress=True):
    """Builds pretraining shards from a list of inputs; the common driver.

    Args:
      kind: "files" (text files), "tars" (tar archives of text files, as OpenWebText)
        or "tfds" (inputs = (dataset name, split, text feature, data_dir)).
      inputs: the sorted input paths; process j takes those with index % n == j.
      other args: see `build_pretraining_dataset`.

    Returns:
      A `BuildSummary`.
    """
    if num_processes < 1:
        raise ValueError("num_processes must be >= 1, got %d" % num_processes)
    if num_out_files < num_processes:
        raise ValueError("num_out_files (%d) must be >= num_processes (%d): every process "
                         "writes its own shards" % (num_out_files, num_processes))
    # Fail fast, before any process starts, on a bad vocabulary.
    vocab = tokenization.load_vocab(vocab_file)
    tokenization.check_special_tokens(vocab, vocab_file)
    _prepare_output_dir(output_dir, num_out_files, overwrite)

    def spec(job_id):
        job_inputs = inputs if kind == "tfds" else [p for i, p in enumerate(inputs)
                                                    if i % num_processes == job_id]
        return _JobSpec(job_id, num_processes, kind, job_inputs, vocab_file, output_dir,
                        max_seq_length, blanks_separate_docs, do_lower_case, strip_accents,
                        num_out_files, seed, skip_invalid_lines)

    start = time.time()
    printer = _ProgressPrinter(_total_bytes(kind, inputs), enabled=progress)
    summary = BuildSummary(max_seq_length=max_seq_length)
    temp_paths = [shard_path(output_dir, i, num_out_files) + _TMP_SUFFIX
                  for i in range(num_out_files)]
    try:
        if num_processes == 1:
            job_summaries = [_run_job(spec(0), printer.add)[0]]
        else:
            mp_context = multiprocessing.get_context(_start_method())
            counters = [mp_context.Value("q", 0) for _ in range(3)]
            with concurrent.futures.ProcessPoolExecutor(
                num_processes, mp_context=mp_context,
                initializer=_init_worker, initargs=(counters,)) as pool:
                futures = [pool.submit(_run_job_in_worker, spec(j)) for j in range(num_processes)]
                while not all(f.done() for f in futures):
                    concurrent.futures.wait(futures, timeout=0.5,
                                            return_when=concurrent.futures.FIRST_EXCEPTION)
                    if any(f.done() and f.exception() for f in futures):
                        break
                    printer.update(*(c.value for c in counters))
                job_summaries = [f.result()[0] for f in futures]
            printer.update(*(c.value for c in counters))
        printer.close()
        for job_summary in job_summaries:
            summary.merge(job_summary)
        if summary.examples == 0:
            raise CorpusError("The corpus (%s%s) produced no examples: it has no non-blank lines."
                              % (", ".join(map(str, inputs[:3])),
                                 ", ..." if len(inputs) > 3 else ""))
        final = []
        for temp in temp_paths:
            path = temp[:-len(_TMP_SUFFIX)]
            tf.io.gfile.rename(temp, path, overwrite=True)
            final.append(path)
    except BaseException:
        # Remove only what this run wrote: its temporary shards.
        for temp in temp_paths:
            if tf.io.gfile.exists(temp):
                tf.io.gfile.remove(temp)
        raise
    summary.seconds = time.time() - start
    summary.shards = tuple(final)
    return summary


def build_pretraining_dataset(corpus_dir, vocab_file, output_dir, max_seq_length=128,
                              num_processes=1, blanks_separate_docs=True,
                              do_lower_case=True, strip_accents=True, num_out_files=1000,
                              seed=None, overwrite=False, skip_invalid_lines=False,
                              progress=True):
    """Writes pretraining TFRecords from the text files of `corpus_dir`.

    Args:
      corpus_dir: directory of UTF-8 text files (one sentence/paragraph per line).
      vocab_file: WordPiece vocabulary with [UNK], [CLS], [SEP], [MASK].
      output_dir: where the `pretrain_data.tfrecord-<i>-of-<n>` shards go (created).
      max_seq_length: ids per example.
      num_processes: parallel processes; process j reads files j, j+n, ...
      blanks_separate_docs: blank lines are document boundaries (else they are skipped
        and only file ends separate documents).
      do_lower_case, strip_accents: tokenizer options (as the original's flags).
      num_out_files: number of shards.
      seed: None (unseeded, as the original) or any int/str for reproducible output.
      overwrite: replace existing shards of the same names.
      skip_invalid_lines: drop lines that are not valid UTF-8 instead of failing.
      progress: print a progress line to stderr.

    Returns:
      A `BuildSummary` (documents, examples, tokens, padding fraction, ...).
    """
    return run_build("files", list_corpus_files(corpus_dir), vocab_file, output_dir,
                     max_seq_length, num_processes, blanks_separate_docs, do_lower_case,
                     strip_accents, num_out_files, seed, overwrite, skip_invalid_lines, progress)


def add_common_flags(parser):
    """The flags shared by this builder and the OpenWebText/tfds variants."""
    parser.add_argument("--max-seq-length", default=128, type=int,
                        help="Number of tokens per example.")
    parser.add_argument("--num-processes", default=1, type=int,
                        help="Parallelize across multiple processes.")
    parser.add_argument("--do-lower-case", dest="do_lower_case", action="store_true",
                        help="Lower case input text (default).")
    parser.add_argument("--no-lower-case", dest="do_lower_case", action="store_false",
                        help="Don't lower case input text.")
    parser.add_argument("--do-strip-accents", dest="strip_accents", action="store_true",
                        help="Strip accents (default).")
    parser.add_argument("--no-strip-accents", dest="strip_accents", action="store_false",
                        help="Don't strip accents.")
    parser.add_argument("--num-out-files", default=1000, type=int,
                        help="Number of output shards (the original always writes 1000).")
    parser.add_argument("--seed", default=None,
                        help="Random seed for a reproducible output (default: unseeded).")
    parser.add_argument("--overwrite", action="store_true",
                        help="Replace existing shards with the same names.")
    parser.add_argument("--skip-invalid-lines", action="store_true",
                        help="Skip lines that are not valid UTF-8 instead of stopping.")
    parser.add_argument("--quiet", action="store_true", help="No progress output.")
    parser.set_defaults(do_lower_case=True, strip_accents=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus-dir", required=True,
                        help="Location of pre-training text files.")
    parser.add_argument("--vocab-file", required=True, help="Location of vocabulary file.")
    parser.add_argument("--output-dir", required=True, help="Where to write out the tfrecords.")
    # As the original, `type=bool`: any non-empty value (even "False") means True;
    # pass an empty string (--blanks-separate-docs "") for False.
    parser.add_argument("--blanks-separate-docs", default=True, type=bool,
                        help="Whether blank lines indicate document boundaries.")
    add_common_flags(parser)
    args = parser.parse_args(argv)
    try:
        summary = build_pretraining_dataset(
            args.corpus_dir, args.vocab_file, args.output_dir, args.max_seq_length,
            args.num_processes, args.blanks_separate_docs, args.do_lower_case,
            args.strip_accents, args.num_out_files, args.seed, args.overwrite,
            args.skip_invalid_lines, progress=not args.quiet)
    except (CorpusError, FileNotFoundError, FileExistsError, PermissionError, ValueError) as e:
        sys.exit("error: %s" % e)
    print(summary)


if __name__ == "__main__":
    # Run the package module's `main`, so that worker processes unpickle functions and
    # exceptions as `pretrain_data.build_pretraining_dataset.*`, not `__main__.*`.
    from pretrain_data import build_pretraining_dataset as _module
    _module.main()
