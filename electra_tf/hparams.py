"""What the pretraining and fine-tuning configs share: overrides, checks, JSON, runtime knobs.

A config is plain data: every hyperparameter is an attribute with its default, set in the
config's `__init__` in the original's order. `HParams` gives both configs one way to apply
overrides (an unknown name is an error that suggests the closest known one), to validate,
print, list (`describe`: every hparam with its default and meaning), save and load them, and
the runtime fields (TPU, precision, strategy, XLA, seed) both of them have.
"""

import difflib
import json
import shutil
import textwrap

from absl import flags

from electra_common import files
from electra_tf.training import precision as precision_lib

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")


def check_known(values, known, what, hint=""):
    """Raises `ValueError` naming every key of `values` not in `known`, with suggestions."""
    unknown = sorted(set(values) - set(known))
    if not unknown:
        return

    def described(name):
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.7)
        return f"{name} (did you mean {close[0]}?)" if close else name

    raise ValueError(f"Unknown {what}{'s' if len(unknown) > 1 else ''}: "
                     f"{', '.join(described(n) for n in unknown)}{hint}")


def parse_hparams(hparams):
    """Reads `--hparams`: a JSON string, or a path to a `.json` file (as the original).

    Args:
        hparams: a JSON object as a string, a path ending in `.json`, a dict, or None.
    Returns:
        A dict of hyperparameters.
    """
    if hparams is None or hparams == "":
        return {}
    if isinstance(hparams, dict):
        return dict(hparams)
    if hparams.endswith(".json"):
        values = files.read_json(hparams)
    else:
        try:
            values = json.loads(hparams)
        except json.JSONDecodeError as e:
            raise ValueError(f"--hparams is neither a path ending in .json nor valid JSON: "
                             f"{e} in {hparams!r}") from None
    if not isinstance(values, dict):
        raise ValueError(f"--hparams must be a JSON object, got {type(values).__name__}")
    return values


def define_flags(fv, model_name_help):
    """The original command lines' three flags: --data-dir, --model-name, --hparams."""
    flags.DEFINE_string("data-dir", None, "Location of data files (model weights, etc).",
                        flag_values=fv, required=True)
    flags.DEFINE_string("model-name", None, model_name_help, flag_values=fv, required=True)
    flags.DEFINE_string("hparams", "{}", "JSON dict of model hyperparameters, or a .json path.",
                        flag_values=fv)


def _as_json(value):
    return json.dumps(value, default=str)


class HParams:
    """The base of `PretrainingConfig` and `FinetuningConfig`.

    Subclasses set their defaults, call `set_runtime_defaults()`, apply the constructor's
    overrides with `update`, and end with `finish(model_name, data_dir, kwargs)`.
    """

    # Derived values that cannot be passed as hyperparameters.
    DERIVED = ()
    # What a resumed run may change; every other value is fixed by the run's checkpoint.
    RESUMABLE = ()
    # {hparam: what it means}, one entry per field (what `describe` prints).
    MEANINGS = {}

    def set_runtime_defaults(self):
        """The TPU fields both original configs have, and the runtime knobs we add."""
        self.use_tpu = False
        self.num_tpu_cores = 1
        self.tpu_job_name = None
        self.tpu_name = None
        self.tpu_zone = None
        self.gcp_project = None
        # What we add to the original (it has no such knobs).
        # "float32", "mixed_bfloat16", "mixed_float16", or "auto": the fastest this
        # hardware runs (training/precision.py), resolved when the config is built.
        self.precision = "float32"
        self.strategy = "default"  # "default", "mirrored", "multi_worker" or "tpu"
        self.jit_compile = False  # XLA-compile the training step
        self.seed = None  # run seed (data order, masking, sampling, dropout); None: drawn once

    def update(self, kwargs):
        """Sets hyperparameters; an unknown name raises `ValueError` naming it."""
        check_known(kwargs, set(vars(self)) - set(self.DERIVED) - {"_args"}, "hparam")
        for key, value in kwargs.items():
            setattr(self, key, value)

    def finish(self, model_name, data_dir, kwargs):
        """Records the constructor arguments (for `save`) and validates."""
        self._args = {"model_name": model_name, "data_dir": data_dir, "hparams": dict(kwargs)}
        self.validate()
        self._precision_choice = None
        if self.precision == "auto":
            self.precision, why = precision_lib.choose(self.use_tpu)
            self._precision_choice = f"precision auto: {self.precision} ({why})"

    def precision_line(self):
        """What precision the run uses, and why when `auto` chose it (a log line)."""
        return self._precision_choice or f"precision: {self.precision}"

    def validate(self):
        """The checks both configs need; raises `ValueError` naming the field."""
        for name, allowed in (("strategy", STRATEGIES), ("precision", PRECISIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")

    def to_dict(self):
        """All resolved values, for printing and saving."""
        return {k: v for k, v in sorted(vars(self).items()) if not k.startswith("_")}

    def save(self, path):
        """Writes the constructor arguments and, for reading, every resolved value."""
        files.write_json(path, {**self._args, "resolved": self.to_dict()}, sort_keys=True)

    def changes_since(self, path):
        """How this config differs from the one saved at `path` by `save`.

        Returns:
            (resumable, fixed): {key: (saved value, this value)} of the keys in `RESUMABLE`
            and of all the others.
        """
        saved = files.read_json(path).get("resolved")
        if not isinstance(saved, dict):
            raise ValueError(f"{path}: no 'resolved' values (not written by this electra-tf)")
        now = json.loads(json.dumps(self.to_dict()))  # tuples as the saved lists
        changed = {k: (saved.get(k), now.get(k)) for k in sorted(set(saved) | set(now))
                   if saved.get(k) != now.get(k)}
        resumable = {k: v for k, v in changed.items() if k in self.RESUMABLE}
        return resumable, {k: v for k, v in changed.items() if k not in resumable}

    @classmethod
    def hparam_table(cls, overrides=None, model_name="<model_name>", data_dir="<data_dir>"):
        """Every field with its default, its value under `overrides`, and its meaning.

        Args:
            overrides: hyperparameters as for the constructor (an unknown name raises
                `ValueError` with a suggestion); None: none.
            model_name, data_dir: the constructor arguments the paths are derived from.
        Returns:
            [(name, default, value, meaning)] in the config's order, values as JSON text.
        """
        default = cls(model_name, data_dir)
        value = cls(model_name, data_dir, **(overrides or {})).to_dict()
        return [(name, _as_json(default_value), _as_json(value[name]),
                 cls.MEANINGS.get(name, ""))
                for name, default_value in vars(default).items() if not name.startswith("_")]

    @classmethod
    def describe(cls, overrides=None, model_name="<model_name>", data_dir="<data_dir>",
                 width=None):
        """`hparam_table` as aligned text: name, default, value (with `overrides`), meaning.

        A value too long for its column continues the row on the next line.

        Args:
            overrides, model_name, data_dir: as for `hparam_table`; the value column is
                shown only when `overrides` is not empty.
            width: where meanings wrap; default: the terminal's width, at least 100.
        Returns:
            The text, a title line first, without a final newline.
        """
        rows = cls.hparam_table(overrides, model_name, data_dir)
        keep = (0, 1, 2, 3) if overrides else (0, 1, 3)
        cells = [[row[i] for i in keep] for row in [("hparam", "default", "value",
                                                      "meaning"), *rows]]
        starts = [0]
        for i, limit in enumerate((32, 14, 14)[:len(keep) - 1]):
            starts.append(starts[-1] + min(limit, max(len(row[i]) for row in cells)) + 2)
        width = width or max(100, shutil.get_terminal_size((100, 24)).columns)
        lines = [f"{cls.__name__} (values as JSON, as --hparams takes them):"]
        for row in cells:
            line = ""
            for cell, start in zip(row, starts):
                if line and len(line) > start - 2:  # no room left: continue below
                    lines.append(line)
                    line = ""
                line = line.ljust(start) + cell
            wrapped = textwrap.wrap(line, width, subsequent_indent=" " * starts[-1],
                                    break_long_words=False, break_on_hyphens=False)
            lines.extend(wrapped or [""])
        return "\n".join(line.rstrip() for line in lines)

    @classmethod
    def describe_flags(cls, args):
        """`describe` for a command line of `define_flags`: `--list-hparams`.

        Args:
            args: the parsed flags; `--hparams`, `--model-name` and `--data-dir` are used
                when given.
        Returns:
            The text of `describe`.
        """
        return cls.describe(parse_hparams(args.hparams), args.model_name or "<model_name>",
                            args.data_dir or "<data_dir>")

    @classmethod
    def from_flags(cls, args):
        """The config of a command line defined by `define_flags`."""
        return cls(args.model_name, args.data_dir, **parse_hparams(args.hparams))

    @classmethod
    def load(cls, path):
        """A config from a file written by `save` (rebuilt from its constructor arguments)."""
        payload = files.read_json(path)
        if not isinstance(payload, dict) or not {"model_name", "data_dir",
                                                 "hparams"} <= set(payload):
            raise ValueError(f"{path}: not an electra_tf config file (expected the keys "
                             "model_name, data_dir and hparams)")
        return cls(payload["model_name"], payload["data_dir"], **payload["hparams"])

    def __repr__(self):
        return f"{type(self).__name__}(" + json.dumps(self.to_dict(), indent=1) + ")"
