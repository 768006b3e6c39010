"""Builds pretraining TFRecords from text, as the original ELECTRA builders do.

Every unit of the source (a file, a member of a tar archive, a tfds example) is read line
by line; lines are tokenized and packed into `[CLS] A [SEP] B [SEP]` examples of
`max_seq_length` ids, written round-robin into `pretrain_data.tfrecord-<i>-of-<n>` shards
with the int64 features `input_ids`, `input_mask` and `segment_ids` (docs/data.md).

The output directory is never wiped. Shards are written under hidden temporary names
(`electra_common.files.temporary_path`) and renamed when every process has succeeded; on
failure only this run's temporaries are removed. Existing shards are an error unless
`overwrite`, and shards of another layout (another `-of-<n>`) are never touched.

Example:

>>> summary = build_pretraining_dataset("corpus/", "vocab.txt", "pretrain_tfrecords", seed=1)
>>> print(summary)   # files, documents, tokens, examples, padding, tokens/s
"""

import concurrent.futures
import multiprocessing
import os
import time

import tensorflow as tf

from electra_common import files
from pretrain_data import job as job_lib
from pretrain_data import progress as progress_lib
from pretrain_data import sources, tokenization

SHARD_PREFIX = "pretrain_data.tfrecord"


def shard_path(output_dir, index, num_out_files):
    """The final name of shard `index` of `num_out_files`."""
    return os.path.join(output_dir, "%s-%d-of-%d" % (SHARD_PREFIX, index, num_out_files))


def build_pretraining_dataset(corpus_dir, vocab_file, output_dir, **options):
    """Writes pretraining TFRecords from the text files of `corpus_dir`.

    Args:
      corpus_dir: directory of UTF-8 text files (one sentence or paragraph per line);
        process j of n reads the files j, j + n, ... of the sorted listing.
      vocab_file: WordPiece vocabulary with [UNK], [CLS], [SEP], [MASK].
      output_dir: where the shards go (created).
      **options: as `run_build` (`max_seq_length`, `num_processes`, `seed`, ...).

    Returns:
      A `job.BuildSummary` (documents, examples, tokens, padding fraction, ...).
    """
    paths = tuple(sources.list_corpus_files(corpus_dir))
    return run_build(sources.TextFiles(paths), vocab_file, output_dir, **options)


def build_openwebtext_pretraining_dataset(data_dir, vocab_file=None, output_dir=None, **options):
    """Writes pretraining TFRecords from the OpenWebText tar archives of `data_dir`.

    Each text file of an archive is one document; blank lines are dropped. Unlike the
    original, the archives are read in place (no extraction to `<data_dir>/tmp`).

    Args:
      data_dir: holds `openwebtext/*` (tar archives, any compression `tarfile` reads)
        and `vocab.txt`.
      vocab_file: default `<data_dir>/vocab.txt`.
      output_dir: default `<data_dir>/pretrain_tfrecords`.
      **options: as `run_build`, except `blanks_separate_docs` (always False here).

    Returns:
      A `job.BuildSummary`.
    """
    archives = tuple(sources.list_corpus_files(os.path.join(data_dir, "openwebtext")))
    return run_build(sources.TarArchives(archives),
                     vocab_file or os.path.join(data_dir, "vocab.txt"),
                     output_dir or os.path.join(data_dir, "pretrain_tfrecords"),
                     blanks_separate_docs=False, **options)


def build_from_tfds(dataset, split, text_feature, vocab_file, output_dir, data_dir=None,
                    **options):
    """Writes pretraining TFRecords from a text feature of a prepared tfds dataset.

    Each example is one document (inside it, blank lines also separate documents if
    `blanks_separate_docs`). Nothing is downloaded.

    Args:
      dataset: a tfds name, with config/version, e.g. "wikipedia/20230601.en".
      split: a tfds split, e.g. "train" or "train[:10%]".
      text_feature: the text feature, e.g. "text".
      vocab_file, output_dir: as `build_pretraining_dataset`.
      data_dir: the tfds data directory (default: tensorflow-datasets' default).
      **options: as `run_build`.

    Returns:
      A `job.BuildSummary`.
    """
    source = sources.TfdsDataset(dataset, split, text_feature, data_dir)
    return run_build(source, vocab_file, output_dir, **options)


def run_build(source, vocab_file, output_dir, *, max_seq_length=128, num_processes=1,
              blanks_separate_docs=True, do_lower_case=True, strip_accents=True,
              num_out_files=1000, seed=None, overwrite=False, skip_invalid_lines=False,
              progress=True, start_method="spawn"):
    """Builds pretraining shards from any source; the common driver.

    Args:
      source: a `sources.TextFiles`, `sources.TarArchives` or `sources.TfdsDataset`.
      vocab_file: WordPiece vocabulary with [UNK], [CLS], [SEP], [MASK].
      output_dir: where the shards go (created).
      max_seq_length: ids per example.
      num_processes: processes; process j reads units j, j + n, ... and writes the shards
        j, j + n, ...
      blanks_separate_docs: blank lines are document boundaries (else they are dropped
        and only unit ends separate documents).
      do_lower_case, strip_accents: tokenizer options (as the original's flags).
      num_out_files: number of shards (at least `num_processes`).
      seed: None (unseeded, as the original) or any int/str for reproducible output (for
        a given source, number of processes and of shards).
      overwrite: replace existing shards of the same names.
      skip_invalid_lines: drop lines that are not valid UTF-8 instead of failing.
      progress: print a progress line to stderr.
      start_method: how worker processes start (`multiprocessing` start methods).
        "spawn" is safe for any caller; "fork" starts faster but may deadlock once this
        process has run TensorFlow ops, so only a caller that has not (a command line)
        should ask for it.

    Returns:
      A `job.BuildSummary`.

    Raises:
      FileNotFoundError, FileExistsError, PermissionError: bad paths, naming them.
      OSError: any other file system error (TensorFlow's included).
      sources.CorpusError: bad input data, naming the file and line.
      ValueError: a bad vocabulary or bad arguments.
    """
    if num_processes < 1:
        raise ValueError("num_processes must be >= 1, got %d" % num_processes)
    if num_out_files < num_processes:
        raise ValueError("num_out_files (%d) must be >= num_processes (%d): every process "
                         "writes its own shards" % (num_out_files, num_processes))
    tokenization.check_vocab(vocab_file)  # fail fast, before any process starts
    _prepare_output_dir(output_dir, num_out_files, overwrite)
    finals = [shard_path(output_dir, i, num_out_files) for i in range(num_out_files)]
    temps = [files.temporary_path(path) for path in finals]
    specs = [job_lib.JobSpec(j, num_processes, source, vocab_file, temps[j::num_processes],
                             max_seq_length, blanks_separate_docs, do_lower_case,
                             strip_accents, seed, skip_invalid_lines)
             for j in range(num_processes)]
    start = time.time()
    summary = job_lib.BuildSummary(max_seq_length=max_seq_length)
    try:
        printer = progress_lib.ProgressPrinter(source.total_bytes(), enabled=progress)
        for job_summary in _run_jobs(specs, printer, start_method):
            summary.merge(job_summary)
        if summary.examples == 0:
            raise sources.CorpusError("The corpus (%s) produced no examples: it has no "
                                      "non-blank lines." % source)
        for temp, final in zip(temps, finals):
            files.commit(temp, final, overwrite=True)
    except BaseException as e:
        for temp in temps:  # this run's temporaries, and nothing else
            files.remove(temp)
        if isinstance(e, tf.errors.OpError):
            raise OSError(e.message) from e
        raise
    summary.seconds = time.time() - start
    summary.shards = tuple(finals)
    return summary


def _prepare_output_dir(output_dir, num_out_files, overwrite):
    """Creates `output_dir` and checks it can be written and holds no foreign shards."""
    try:
        tf.io.gfile.makedirs(output_dir)
    except (tf.errors.OpError, OSError) as e:
        raise PermissionError("Cannot create output directory %s: %s" % (output_dir, e)) from None
    # What killed builds left (hidden `.tmp-*` shards): never part of the data.
    files.remove_leftovers(output_dir)
    probe = files.temporary_path(os.path.join(output_dir, "write-test"))
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


def _run_jobs(specs, printer, start_method):
    """Runs the jobs: in this process if there is one, else one worker process each.

    Returns:
      Their summaries, in job order.
    """
    if len(specs) == 1:
        summaries = [job_lib.run_job(specs[0], printer.add)]
    else:
        context = multiprocessing.get_context(start_method)
        counters = [context.Value("q", 0) for _ in range(3)]  # bytes, tokens, examples
        with concurrent.futures.ProcessPoolExecutor(
                len(specs), mp_context=context, initializer=_init_worker,
                initargs=(counters,)) as pool:
            futures = [pool.submit(_run_job_in_worker, spec) for spec in specs]
            while not all(f.done() for f in futures):
                concurrent.futures.wait(futures, timeout=0.5,
                                        return_when=concurrent.futures.FIRST_EXCEPTION)
                if any(f.done() and f.exception() for f in futures):
                    break
                printer.update(*(c.value for c in counters))
            summaries = [f.result() for f in futures]
        printer.update(*(c.value for c in counters))
    printer.close()
    return summaries


# In a worker process: the counters shared with the driver, for the progress line.
_worker_counters = None


def _init_worker(counters):
    global _worker_counters
    _worker_counters = counters


def _add_to_worker_counters(bytes_read, tokens, examples):
    for counter, increment in zip(_worker_counters, (bytes_read, tokens, examples)):
        with counter.get_lock():
            counter.value += increment


def _run_job_in_worker(spec):
    # Each worker is one process doing sequential work; keep TF to one thread so that
    # N processes use N cores without oversubscription.
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    return job_lib.run_job(spec, _add_to_worker_counters)
