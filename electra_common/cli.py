"""The one command-line framework: absl flags, a fast `--help`, one error wrapper.

A command module defines its flags in a function and its work in `main(args)`, importing
the library (and so TensorFlow) only inside `main`:

```python
def define_flags(fv):
    flags.DEFINE_string("data-dir", None, "Where the data is.", flag_values=fv, required=True)

def main(args):                      # args.data_dir, ...
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
"""

import os
import sys
import types

from absl import flags

# Errors that mean bad input or a refused action: printed as one line, exit status 1.
USER_ERRORS = (OSError, ValueError, FloatingPointError)
HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull")


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


def parse(define_flags, argv, doc=None):
    """Parses `argv` (program name first) with the flags `define_flags(fv)` defines.

    Returns:
        A namespace with one attribute per flag, dashes turned into underscores.
    Raises:
        SystemExit: 0 after printing help; 2 after a flag error.
    """
    fv = flags.FlagValues()
    define_flags(fv)
    names = sorted(fv)
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        print(_help_text(doc, fv, names))
        sys.exit(0)
    try:
        rest = fv(list(argv))
        if len(rest) > 1:
            raise UsageError(f"unexpected arguments: {' '.join(rest[1:])}")
    except (flags.Error, UsageError) as e:
        _usage_exit(e)
    return types.SimpleNamespace(**{name.replace("-", "_"): fv[name].value for name in names})


def _usage_exit(error):
    print(f"error: {error}\nRun with --help to see the flags.", file=sys.stderr)
    sys.exit(2)


def quiet_tensorflow():
    """TensorFlow's Python INFO/WARNING logs off (its C++ start-up lines are not ours)."""
    from absl import logging  # noqa: PLC0415
    logging.set_verbosity(logging.WARNING)
    import tensorflow as tf  # noqa: PLC0415 (after the flags are parsed)
    tf.get_logger().setLevel("ERROR")


def run(main, define_flags, doc=None, argv=None):
    """Parses the flags, then runs `main(args)` with the one error wrapper.

    Args:
        main: a function of the parsed flags (a namespace); its return value is ignored.
        define_flags: a function defining the flags on the `FlagValues` it is given.
        doc: the help text shown above the flags (usually the module docstring).
        argv: the command line, program name first; default `sys.argv`.
    """
    args = parse(define_flags, sys.argv if argv is None else argv, doc)
    quiet_tensorflow()
    try:
        main(args)
    except UsageError as e:
        _usage_exit(e)
    except USER_ERRORS as e:
        if os.environ.get("ELECTRA_TF_TRACEBACK"):
            raise
        sys.exit(f"error: {e}")
