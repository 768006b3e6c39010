"""One process of a build: reads its share of a source, writes its shards.

A job reads its units (see `sources`), cuts them into documents, tokenizes the lines in
batches with the graph tokenizer, packs them into examples with `ExampleBuilder` and writes
the examples round-robin into its shards. `build.run_build` makes the jobs and runs them.
"""

import dataclasses
import gc
import random
import time

import tensorflow as tf

from pretrain_data import examples as examples_lib
from pretrain_data import sources as sources_lib
from pretrain_data import tokenization

# Lines per tokenizer call: large enough to amortise the graph call, small enough to keep
# memory flat.
BATCH_LINES = 2048


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
        """Adds the counts of another job's summary to this one."""
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


@dataclasses.dataclass
class JobSpec:
    """Everything one process needs (picklable, to be sent to a worker).

    `paths` are the files this job writes, its shards in order (the driver renames them
    when every job has succeeded); examples go round-robin over them.
    """
    job_id: int
    num_jobs: int
    source: object            # a `sources` value: TextFiles, TarArchives, TfdsDataset
    vocab_file: str
    paths: list
    max_seq_length: int
    blanks_separate_docs: bool
    do_lower_case: bool
    strip_accents: bool
    seed: object
    skip_invalid_lines: bool


def job_rng(seed, job_id):
    """The random numbers of job `job_id`: seeded from `seed`, or unseeded if it is None."""
    # A string seed is hashed with SHA-512: stable across runs and Python versions.
    return random.Random("%s:%d" % (seed, job_id)) if seed is not None else random.Random()


def line_batches(spec, rng, summary):
    """Yields lists of items: a stripped line (str; "" is blank), or None at a unit's end.

    Counts files, lines and documents (and what `sources.line_lists` counts) in `summary`.
    """
    batch = []
    for unit in spec.source.units(spec.job_id, spec.num_jobs, rng):
        summary.files += 1
        previous = ""  # the previous kept line of this unit; "" at a document start
        for lines in sources_lib.line_lists(unit, spec.skip_invalid_lines, summary):
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
            if len(batch) >= BATCH_LINES:
                yield batch
                batch = []
        batch.append(None)
    if batch:
        yield batch


def run_job(spec, progress=None):
    """Runs one job: reads its units, writes `spec.paths`.

    Args:
      spec: a `JobSpec`.
      progress: optional callable(bytes_read, tokens, examples), called with increments.

    Returns:
      The job's `BuildSummary` (without `seconds` and `shards`, which the driver fills).
    """
    tokenizer = tokenization.FullTokenizer(spec.vocab_file, spec.do_lower_case,
                                           spec.strip_accents)
    vocab = tokenizer.vocab
    rng = job_rng(spec.seed, spec.job_id)
    builder = examples_lib.ExampleBuilder(spec.max_seq_length, rng)
    serializer = examples_lib.ExampleSerializer(vocab["[CLS]"], vocab["[SEP]"],
                                                spec.max_seq_length, max(tokenizer.inv_vocab) + 1)
    summary = BuildSummary(max_seq_length=spec.max_seq_length)
    writers = []
    start = None
    # The loop allocates millions of small lists (token ids) but no reference cycles;
    # Python's cyclic GC would otherwise rescan the ever-larger heap again and again.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        writers = [tf.io.TFRecordWriter(p) for p in spec.paths]
        n_written = 0
        reported = (0, 0, 0)
        for batch in line_batches(spec, rng, summary):
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
    return summary
