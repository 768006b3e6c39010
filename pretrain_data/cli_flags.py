"""The flags the pretrain_data commands share, and the library arguments they stand for.

The spellings are the original builder's (argparse) ones: `--do-lower-case` /
`--no-lower-case`, `--do-strip-accents` / `--no-strip-accents`, and
`--blanks-separate-docs` with the original's `type=bool` (any non-empty value, even
"False", means True; an empty value means False). absl's own `--nodo-lower-case` works
too. No TensorFlow here: the commands answer `--help` without it.
"""

import multiprocessing

from absl import flags


class _Switch(flags.BooleanFlag):
    """A boolean flag shown as the switch it is (`--no-lower-case`, not `--[no]no-...`)."""

    def flag_type(self):
        return "switch"


class _OriginalBoolParser(flags.ArgumentParser):
    """Python's `bool(str)`, as argparse's `type=bool` of the original."""

    def parse(self, argument):
        return bool(argument)

    def flag_type(self):
        return "string"


def _define_blanks_separate_docs(fv):
    """--blanks-separate-docs, a string flag read as the original's argparse `type=bool`."""
    flags.DEFINE(_OriginalBoolParser(), "blanks-separate-docs", True,
                 "Whether blank lines indicate document boundaries. As the original's\n"
                 "type=bool, any non-empty value (even False) means True: pass\n"
                 "--blanks-separate-docs \"\" for False.", flag_values=fv)


def define_tokenizer_flags(fv):
    """`--do-lower-case`/`--no-lower-case` and `--do-strip-accents`/`--no-strip-accents`."""
    flags.DEFINE_boolean("do-lower-case", True, "Lower case input text (default).",
                         flag_values=fv)
    flags.DEFINE_flag(_Switch("no-lower-case", False, "Don't lower case input text (wins over "
                              "--do-lower-case)."), fv)
    flags.DEFINE_boolean("do-strip-accents", True, "Strip accents (default; only when "
                         "lower-casing, as the original).", flag_values=fv)
    flags.DEFINE_flag(_Switch("no-strip-accents", False, "Don't strip accents (wins over "
                              "--do-strip-accents)."), fv)


def tokenizer_options(args):
    """The tokenizer arguments `do_lower_case` and `strip_accents` the flags ask for."""
    return {"do_lower_case": args.do_lower_case and not args.no_lower_case,
            "strip_accents": args.do_strip_accents and not args.no_strip_accents}


def define_build_flags(fv):
    """The flags of every builder command (files, OpenWebText, tfds)."""
    flags.DEFINE_integer("max-seq-length", 128, "Number of tokens per example.", flag_values=fv)
    flags.DEFINE_integer("num-processes", 1, "Parallelize across multiple processes.",
                         flag_values=fv)
    define_tokenizer_flags(fv)
    flags.DEFINE_integer("num-out-files", 1000, "Number of output shards (the original "
                         "always writes 1000).", flag_values=fv)
    flags.DEFINE_string("seed", None, "Random seed for a reproducible output (default: "
                        "unseeded).", flag_values=fv)
    flags.DEFINE_boolean("overwrite", False, "Replace existing shards with the same names.",
                         flag_values=fv)
    flags.DEFINE_boolean("skip-invalid-lines", False, "Skip lines that are not valid UTF-8 "
                         "instead of stopping.", flag_values=fv)
    flags.DEFINE_boolean("quiet", False, "No progress output.", flag_values=fv)


def define_text_build_flags(fv):
    """The flags of the builders of plain text (files, tfds): `define_build_flags`, the
    required --vocab-file and --output-dir, and --blanks-separate-docs."""
    flags.DEFINE_string("vocab-file", None, "Location of vocabulary file.", flag_values=fv,
                        required=True)
    flags.DEFINE_string("output-dir", None, "Where to write out the tfrecords.",
                        flag_values=fv, required=True)
    _define_blanks_separate_docs(fv)
    define_build_flags(fv)


def build_options(args):
    """The `build.run_build` keyword arguments of the flags `define_build_flags` defines.

    Workers are forked where the platform can: a command has run no TensorFlow op before
    it starts them, so forking is safe and saves each worker importing TensorFlow again.
    """
    return dict(tokenizer_options(args), max_seq_length=args.max_seq_length,
                num_processes=args.num_processes, num_out_files=args.num_out_files,
                seed=args.seed, overwrite=args.overwrite,
                skip_invalid_lines=args.skip_invalid_lines, progress=not args.quiet,
                start_method=("fork" if "fork" in multiprocessing.get_all_start_methods()
                              else "spawn"))
