"""The one command-line framework: absl flags, a fast `--help`, quiet TensorFlow, one error wrapper.

A command module defines its flags in a function and its work in `main(args)`, importing
the library (and so TensorFlow) only inside `main`:

```python
def define_flags(fv):
    flags.DEFINE_string("data-dir", None, "Where the data is.", flag_values=fv, required=True)

def main(args):                      # args.data_dir, ..., args.verbose
    from electra_tf.pretraining import trainer
    ...

if __name__ == "__main__":
    cli.run(main, define_flags, __doc__)
```

`run` parses the flags into a fresh `absl.flags.FlagValues` (so commands never clash on
flag names, even in one process), answers `--help` before anything heavy is imported (exit
0), turns a bad flag into `error: ...` (exit 2) and a user error raised by `main`
(`USER_ERRORS`: a missing or existing file, a bad value, a diverged run) into one line
`error: ...` (exit 1). With the environment variable `ELECTRA_TF_TRACEBACK=1` those errors
keep their traceback (a `ValueError` deep inside TensorFlow is a bug, not bad input).

Every command has `--verbose`. Without it, TensorFlow is quiet: its Python loggers (and
absl's) show errors only, Python warnings raised in TensorFlow, Keras and
tensorflow-datasets are ignored, and a command run as a process sets
`TF_CPP_MIN_LOG_LEVEL=2` (unless the environment sets it) and passes its C-level stderr
(file descriptor 2) through a filter process that drops only the start-up lines of
`STARTUP_NOISE` (those `TF_CPP_MIN_LOG_LEVEL` cannot silence); everything else, real C++
errors included, passes unchanged. `--verbose` turns all of this off (INFO logs included).
A command given `list_hparams` also has `--list-hparams`, answered like `--help`: required
flags need not be given.
"""

import atexit
import os
import sys
import types

from absl import flags

# Errors that mean bad input or a refused action: printed as one line, exit status 1.
USER_ERRORS = (OSError, ValueError, FloatingPointError)
HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull")
LIST_HPARAMS_FLAG = "--list-hparams"

# TensorFlow's start-up lines on stderr that say nothing to act on, dropped unless
# --verbose (regular expressions, searched in each line). Most are written before absl's
# C++ logging is initialised, so TF_CPP_MIN_LOG_LEVEL does not silence them.
STARTUP_NOISE = (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r" cudart_stub\.cc:\d+\] Could not find cuda drivers",
    r" cuda_platform\.cc:\d+\] failed call to cuInit",
    r" cuda_(dnn|fft|blas)\.cc:\d+\] Unable to register cu\w+ factory",
    r" cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .*rebuild TensorFlow with the appropriate "
    r"compiler flags\.",
    r"\] oneDNN custom operations are on\.",
    r"\] oneDNN supports DT_\w+ only on platforms with AVX-512",
)
# Modules whose Python warnings are ignored unless --verbose.
CHATTY_MODULES = r"(tensorflow|tf_keras|keras|keras_hub|tensorflow_datasets|tensorflow_text)\b"

# The filter process: copies its stdin to its stdout line by line, but for the noise lines.
# It outlives a killed command long enough to pass on everything written before.
_FILTER = """
import re, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
noise = re.compile(sys.argv[1].encode())
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if not noise.search(line):
        out.write(line)
        out.flush()
"""


class UsageError(Exception):
    """A wrong combination of flags: printed with a pointer to `--help`, exit status 2."""


def _help_text(doc, fv, names):
    lines = [doc.strip(), "", "flags:"] if doc else ["flags:"]
    for name in names:
        flag = fv[name]
        kind = flag.flag_type()
        shown = f"--[no]{name}" if kind == "bool" else f"--{name}"
        default = "" if flag.default is None else f"  (default: {flag.default_as_str})"
        lines.append(f"  {shown}{default}")
        lines.extend(f"      {line}" for line in (flag.help or "").splitlines())
    return "\n".join(lines)


def _define_generic_flags(fv, list_hparams):
    """The flags every command has, whatever `define_flags` defines."""
    flags.DEFINE_boolean("verbose", False, "Show TensorFlow's start-up lines, INFO logs and "
                         "warnings (hidden by default).", flag_values=fv)
    if list_hparams is not None:
        flags.DEFINE_boolean("list-hparams", False, "List every hparam with its default and "
                             "meaning (and its value with --hparams), then exit; no other "
                             "flag is required.", flag_values=fv)


def parse(define_flags, argv, doc=None, list_hparams=None):
    """Parses `argv` (program name first) with the flags `define_flags(fv)` defines.

    `--verbose` is added to every command; `--list-hparams` when `list_hparams` is given.
    Like `--help`, `--list-hparams` is answered here: required flags need not be given.

    Args:
        define_flags: a function defining the command's flags on the `FlagValues` given.
        argv: the command line, program name first.
        doc: the help text shown above the flags.
        list_hparams: optional; a function of the parsed flags returning the text that
            `--list-hparams` prints. It may raise a user error (printed as one line).
    Returns:
        A namespace with one attribute per flag, dashes turned into underscores.
    Raises:
        SystemExit: 0 after printing help or the hparams; 1 after a user error of
            `list_hparams`; 2 after a flag error.
    """
    fv = flags.FlagValues()
    define_flags(fv)
    _define_generic_flags(fv, list_hparams)
    names = sorted(fv)
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        print(_help_text(doc, fv, names))
        sys.exit(0)
    listing = list_hparams is not None and LIST_HPARAMS_FLAG in argv[1:]
    if listing:  # required flags must not block the listing: drop their checks
        for name in names:
            fv[name].validators = []
    try:
        rest = fv(list(argv))
        if len(rest) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(rest[1:])}")
    except (flags.Error, UsageError) as e:
        _usage_exit(e)
    args = types.SimpleNamespace(**{name.replace("-", "_"): fv[name].value for name in names})
    if listing:
        _guarded(lambda: print(list_hparams(args)))
        sys.exit(0)
    return args


def _usage_exit(error):
    print(f"error: {error}\nRun with --help to see the flags.", file=sys.stderr)
    sys.exit(2)


def _guarded(work):
    """Runs `work()`; a user error becomes one line `error: ...` and exit status 1."""
    try:
        work()
    except UsageError as e:
        _usage_exit(e)
    except USER_ERRORS as e:
        if os.environ.get("ELECTRA_TF_TRACEBACK"):
            raise
        sys.exit(f"error: {e}")


def quiet_tensorflow(verbose=False):
    """Python-side chatter: TensorFlow's and absl's loggers, and library warnings.

    Quiet: errors only, and the warnings of `CHATTY_MODULES` ignored. Verbose: INFO logs.
    Imports no TensorFlow (its logger is the standard `logging` logger "tensorflow").
    """
    import logging as std_logging  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    from absl import logging  # noqa: PLC0415
    level = "INFO" if verbose else "ERROR"
    logging.set_verbosity(level.lower())
    std_logging.getLogger("tensorflow").setLevel(level)
    if not verbose:
        warnings.filterwarnings("ignore", module=CHATTY_MODULES)


def filter_stderr():
    """Drops TensorFlow's start-up lines (`STARTUP_NOISE`) from this process's stderr.

    File descriptor 2 (where C++ code writes, and child processes inherit) becomes a pipe
    into a small filter process that writes every other line to the real stderr. Python's
    own `sys.stderr` writes to the real stderr directly, so tracebacks and messages keep
    their order and are never delayed. At exit, fd 2 is restored and the filter is given a
    moment to pass on the last lines; if this process dies abruptly (`os._exit`, a signal,
    a C++ abort), the filter still passes on everything written before. POSIX only; a no-op
    elsewhere, or if the filter cannot be started.

    Returns:
        The filter's `subprocess.Popen`, or None.
    """
    import subprocess  # noqa: PLC0415

    if os.name != "posix" or sys.stderr is None:
        return None
    sys.stderr.flush()
    try:
        real = os.dup(2)
        read, write = os.pipe()
    except OSError:  # no stderr to filter
        return None
    try:
        process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER,
                                    "|".join(f"(?:{p})" for p in STARTUP_NOISE)],
                                   stdin=read, stdout=real)
    except OSError:
        for fd in (read, write, real):
            os.close(fd)
        return None
    os.close(read)
    os.dup2(write, 2)
    os.close(write)
    sys.stderr = open(real, "w", buffering=1, encoding=sys.stderr.encoding,  # noqa: SIM115
                      errors="backslashreplace", closefd=False)

    def restore():
        sys.stderr.flush()
        os.dup2(real, 2)  # our end of the pipe closes: the filter ends once it has read all
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # a child process still holds the pipe
            pass

    atexit.register(restore)
    return process


def run(main, define_flags, doc=None, argv=None, list_hparams=None):
    """Parses the flags, then runs `main(args)` with the one error wrapper.

    Args:
        main: a function of the parsed flags (a namespace); its return value is ignored.
        define_flags: a function defining the flags on the `FlagValues` it is given.
        doc: the help text shown above the flags (usually the module docstring).
        argv: the command line, program name first; default `sys.argv`. The stderr filter
            (`filter_stderr`) is installed only for the default: a real command process.
        list_hparams: optional; what `--list-hparams` prints (see `parse`).
    """
    args = parse(define_flags, sys.argv if argv is None else argv, doc, list_hparams)
    if argv is None and not args.verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        filter_stderr()
    quiet_tensorflow(args.verbose)
    _guarded(lambda: main(args))
