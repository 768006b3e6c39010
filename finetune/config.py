"""Every fine-tuning hyperparameter, its default, and the order defaults apply in.

`FinetuningConfig` reproduces the original `configure_finetuning.FinetuningConfig`
(documented in docs/finetuning.md). Model sizing reuses `electra_tf.config.get_bert_config`.
"""

import json
import os
import types

from electra_common import files
from electra_tf.config import (CLIP_NORM_OF_SPARSE_GRADIENTS_MEANING, DEBUG_MODEL,
                               clip_norm_of_sparse_gradients, embedding_size, get_bert_config)
from electra_tf.hparams import HParams

# Names that select the QA defaults by *substring*: "naturalqs" has neither.
_QA_SUBSTRINGS = ("squad", "qa")
# What a pretrained model directory's `config.json` gives a fine-tuning run: the hparams
# that shape its encoder, and the tokenizer's casing (see `pretrained_architecture`).
ARCHITECTURE = ("model_size", "vocab_size", "embedding_size", "model_hparam_overrides",
                "do_lower_case")
# The `BertConfig` fields that define the encoder's weights and function (dropout and
# `initializer_range` do not: a fine-tuning run may change them).
ENCODER_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "hidden_act", "max_position_embeddings",
                  "type_vocab_size")
DATA_SOURCES = ("files", "tfds")
# A pretrained model directory's config (`electra_tf.checkpoints.CONFIG_FILE`, not imported
# here: it loads TensorFlow; tests/finetune/test_config.py checks they agree).
PRETRAINED_CONFIG_FILE = "config.json"


# What each hparam means (`--list-hparams`; the field tables of docs/finetuning.md).
MEANINGS = {
    "model_name": "the pretrained model: <data_dir>/models/<model_name>",
    "data_dir": "holds finetuning_data/, vocab.txt, models/",
    "debug": "a 3-layer H=144 model from random weights on the first 100 lines",
    "log_examples": "print the first featurised training record",
    "num_trials": "train+eval runs; a negative value loops forever",
    "do_train": "train each trial; False evaluates saved models",
    "do_eval": "score dev after each trial and write the results files",
    "keep_all_models": "False: delete each trial's model directory once the next trial's is "
                       "written",
    "model_size": '"small", "base" or "large" (H, L as in pretraining)',
    "task_names": "the tasks, trained jointly; a record's task_id indexes this list",
    "model_hparam_overrides": "BertConfig fields to override (an unknown key is an error)",
    "embedding_size": 'E; None means H; 128 for model_size "small"',
    "vocab_size": "V; vocab.txt must have exactly V tokens (checked before training and at "
                  "export)",
    "do_lower_case": "lower-case (and strip accents) when tokenising; recorded for serving",
    "data_source": '"files": <data_dir>/finetuning_data/<task>/; "tfds": GLUE and SQuAD '
                   "from tensorflow-datasets",
    "tfds_data_dir": "tensorflow-datasets data directory; None: its default",
    "learning_rate": "peak LR (large: 5e-5)",
    "weight_decay_rate": "decoupled weight decay (embedding tables included, LayerNorm and "
                         "biases excluded, as the original)",
    "layerwise_lr_decay": "layer-wise LR decay; any value > 0 enables it, 0 disables "
                          "(large: 0.9)",
    "num_train_epochs": "epochs (single-task defaults: rte, sts 10; QA 2)",
    "warmup_proportion": "share of the steps of linear warm-up",
    "save_checkpoints_steps": "accepted for compatibility; only the final model is saved",
    "iterations_per_loop": "accepted for compatibility; progress is printed every 10 steps",
    "use_tfrecords_if_existing": "reuse cached records whose metadata matches",
    "write_test_outputs": "write test-set predictions (GLUE and SQuAD 2.0 only)",
    "n_writes_test": "write them for trials 1..n_writes_test",
    "max_seq_length": "S (single-task defaults: chunk 256; QA 512)",
    "train_batch_size": "global training batch (all replicas)",
    "eval_batch_size": "batch of dev scoring",
    "predict_batch_size": "batch of test-set prediction",
    "double_unordered": "MRPC and STS training pairs are added a second time with the "
                        "sentences swapped",
    "max_query_length": "question word-pieces kept",
    "doc_stride": "the start of each context window advances by min(window length, "
                  "doc_stride) pieces",
    "n_best_size": "candidate texts kept per question; without joint prediction also the "
                   "top-n starts and ends",
    "max_answer_length": "longest answer span, in word-pieces",
    "answerable_classifier": "add the answerability head and its loss",
    "answerable_uses_start_logits": "the classifier reads [CLS] + the start-weighted context "
                                    "(else [CLS] alone)",
    "answerable_weight": "weight of its sigmoid cross-entropy",
    "joint_prediction": "end logits conditioned on the start (20x20 beam); else independent "
                        "start and end",
    "beam_size": "starts, and ends per start, in the beam",
    "qa_na_threshold": 'SQuAD 2.0: "no answer" when the null odds exceed it',
    "use_tpu": "True selects the TPU strategy",
    "num_tpu_cores": "accepted for compatibility (TPUStrategy uses every core it finds)",
    "tpu_job_name": "accepted for compatibility",
    "tpu_name": "the TPU to connect to",
    "tpu_zone": "the TPU to connect to",
    "gcp_project": "the TPU to connect to",
    "precision": '"float32", "mixed_bfloat16", "mixed_float16" (dynamic loss scaling) or '
                 '"auto" (the fastest this hardware runs, logged with the reason); logits, '
                 "softmaxes and losses stay float32",
    "strategy": '"default", "mirrored" (all local GPUs), "multi_worker" (the cluster in '
                'TF_CONFIG), "tpu"',
    "jit_compile": "compile the training step with XLA",
    "clip_norm_of_sparse_gradients": CLIP_NORM_OF_SPARSE_GRADIENTS_MEANING,
    "seed": "trial t uses seed + t (data order, initial head weights, dropout); None draws "
            "a seed per trial and prints it",
    "vocab_file": "the WordPiece vocabulary: <m>/vocab.txt if it exists, else "
                  "<data_dir>/vocab.txt (<m>: the pretrained model directory)",
    "init_checkpoint": "the pretrained weights, <m> (None in debug mode: random weights): one "
                       "of our model directories, an original TF1 checkpoint prefix, or a "
                       "directory holding one",
    "model_dir": "<m>/finetuning_models/<tasks>_model; trial t writes <model_dir>_<t>",
    "results_txt": "<m>/results/<tasks>_results.txt",
    "results_json": "<m>/results/<tasks>_results.json",
    "preprocessed_data_dir": "the cached records: <m>/finetuning_tfrecords/<tasks>_tfrecords "
                             "(..._tfrecords-debug in debug mode)",
    "test_predictions_dir": "test-set predictions: <m>/test_predictions",
}


class FinetuningConfig(HParams):
    """Every fine-tuning hyperparameter, assembled exactly as the original.

    Order: defaults → kwargs → single-task defaults → size defaults → debug defaults →
    kwargs again, so explicit values always win.

    Unlike the original, the paths that depend on `debug` (`init_checkpoint`,
    `preprocessed_data_dir`) are derived *after* the kwargs, so `"debug": true` starts
    from random weights and uses its own `-debug` records, as documented (the original
    computed them first, so the flag had no effect there).

    When `init_checkpoint` is one of our model directories (it has a `config.json`), the
    `ARCHITECTURE` hparams come from it (`pretrained_architecture`), applied as if passed:
    an explicit hparam that gives the encoder another shape is a `ValueError` naming the
    key, both values and the file; `do_lower_case` given explicitly wins.

    Args:
        model_name: the pretrained model's name: `<data_dir>/models/<model_name>`.
        data_dir: directory holding `finetuning_data/<task>/`, `vocab.txt` and `models/`.
        architecture: None: read the architecture from `init_checkpoint`'s `config.json`
            if it has one; or `{"file": path or None, "hparams": {...}}` as
            `pretrained_architecture` returns it (how a saved config is loaded, so a
            fine-tuned model does not depend on its pretrained directory afterwards).
        **kwargs: hyperparameter overrides. An unknown name raises `ValueError`.

    Example:
    ```python
    config = FinetuningConfig("electra_small", "/data", task_names=["rte"])
    config.num_train_epochs, config.embedding_size   # 10.0 128
    ```
    """

    MEANINGS = MEANINGS
    # What a re-run may change and still evaluate the trials it trained (`trials.py`):
    # what and how to evaluate and write, and where; everything else made the model.
    RESUMABLE = ("model_name", "num_trials", "do_train", "do_eval", "keep_all_models",
                 "log_examples", "use_tfrecords_if_existing", "write_test_outputs",
                 "n_writes_test", "eval_batch_size", "predict_batch_size", "data_dir",
                 "vocab_file", "model_dir", "results_txt", "results_json",
                 "preprocessed_data_dir", "test_predictions_dir", "data_source",
                 "tfds_data_dir", "iterations_per_loop", "save_checkpoints_steps",
                 "strategy", "jit_compile", "use_tpu", "num_tpu_cores", "tpu_job_name",
                 "tpu_name", "tpu_zone", "gcp_project")

    def __init__(self, model_name, data_dir, architecture=None, **kwargs):
        if architecture is None:
            architecture = pretrained_architecture(kwargs.get(
                "init_checkpoint", default_init_checkpoint(
                    kwargs.get("data_dir", data_dir), kwargs.get("model_name", model_name),
                    kwargs.get("debug", False))))
        self._architecture = architecture
        inherited, explicit = architecture["hparams"], kwargs
        kwargs = {**inherited, **explicit}
        if "model_hparam_overrides" in inherited:  # explicit overrides win key by key
            kwargs["model_hparam_overrides"] = {**inherited["model_hparam_overrides"],
                                                **explicit.get("model_hparam_overrides", {})}

        # general
        self.model_name = model_name
        self.debug = False  # tiny model, 100 lines of data, random weights
        self.log_examples = False  # print the first featurised example
        self.num_trials = 1  # train+eval runs; a negative value loops forever
        self.do_train = True
        self.do_eval = True
        self.keep_all_models = True  # False: delete each trial's model dir but the last

        # model
        self.model_size = "small"  # "small", "base" or "large"
        self.task_names = ["chunk"]
        self.model_hparam_overrides = {}
        self.embedding_size = None  # None: the hidden size; 128 for "small"
        self.vocab_size = 30522
        self.do_lower_case = True

        # training
        self.learning_rate = 1e-4
        self.weight_decay_rate = 0.01
        self.layerwise_lr_decay = 0.8  # any value > 0 enables layer-wise LR decay
        self.num_train_epochs = 3.0
        self.warmup_proportion = 0.1
        self.save_checkpoints_steps = 1000000  # in effect, only the final checkpoint
        self.iterations_per_loop = 1000
        self.use_tfrecords_if_existing = True

        # where the task data comes from (ours; the original reads files only)
        self.data_source = "files"  # "files": <data_dir>/finetuning_data/<task>/; "tfds"
        self.tfds_data_dir = None  # tensorflow-datasets' data dir (None: its default)

        # test-set outputs (GLUE and SQuAD 2.0 only)
        self.write_test_outputs = False
        self.n_writes_test = 5  # write test predictions for trials 1..n_writes_test

        # sizing
        self.max_seq_length = 128
        self.train_batch_size = 32
        self.eval_batch_size = 32
        self.predict_batch_size = 32
        self.double_unordered = True  # MRPC/STS train: add each pair swapped

        # question answering
        self.max_query_length = 64
        self.doc_stride = 128
        self.n_best_size = 20
        self.max_answer_length = 30
        self.answerable_classifier = True
        self.answerable_uses_start_logits = True
        self.answerable_weight = 0.5
        self.joint_prediction = True
        self.beam_size = 20
        self.qa_na_threshold = -2.75

        self.set_runtime_defaults()  # TPU fields, precision, strategy, XLA, seed
        # "per_lookup" or "dense" (ours: the original follows use_tpu); None: from use_tpu
        self.clip_norm_of_sparse_gradients = None

        # paths (derived below); listed here so they can be overridden as hparams
        self.data_dir = data_dir
        self.vocab_file = None
        self.init_checkpoint = None
        self.model_dir = None
        self.results_txt = None
        self.results_json = None
        self.preprocessed_data_dir = None
        self.test_predictions_dir = None

        self.update(kwargs)
        if len(self.task_names) == 1:
            task = self.task_names[0]
            if task in ("rte", "sts"):
                self.num_train_epochs = 10.0
            elif any(s in task for s in _QA_SUBSTRINGS):
                self.max_seq_length = 512
                self.num_train_epochs = 2.0
                self.write_test_outputs = False
            elif task == "chunk":
                self.max_seq_length = 256
            else:
                self.num_train_epochs = 3.0
        if self.model_size == "large":
            self.learning_rate = 5e-5
            self.layerwise_lr_decay = 0.9
        elif self.model_size == "small":
            self.embedding_size = 128
        if self.debug:
            self.save_checkpoints_steps = 1000000
            self.use_tfrecords_if_existing = False
            self.num_trials = 1
            self.iterations_per_loop = 1
            self.train_batch_size = 32
            self.num_train_epochs = 3.0
            self.log_examples = True
        self.update(kwargs)
        self.clip_norm_of_sparse_gradients = clip_norm_of_sparse_gradients(self)
        self._derive_paths(kwargs)
        self.finish(model_name, data_dir, kwargs)
        self._args["architecture"] = architecture
        self._check_architecture(explicit)

    def _derive_paths(self, kwargs):
        """The original's paths, after the kwargs so that `debug` takes effect."""
        pretrained_dir = os.path.join(self.data_dir, "models", self.model_name)
        tasks = ",".join(self.task_names)
        results_dir = os.path.join(pretrained_dir, "results")
        own_vocab = os.path.join(pretrained_dir, "vocab.txt")
        derived = {
            "vocab_file": own_vocab if files.exists(own_vocab)
            else os.path.join(self.data_dir, "vocab.txt"),
            "init_checkpoint": default_init_checkpoint(self.data_dir, self.model_name,
                                                       self.debug),
            "model_dir": os.path.join(pretrained_dir, "finetuning_models", tasks + "_model"),
            "results_txt": os.path.join(results_dir, tasks + "_results.txt"),
            # The original pickles the results; we write JSON.
            "results_json": os.path.join(results_dir, tasks + "_results.json"),
            "preprocessed_data_dir": os.path.join(
                pretrained_dir, "finetuning_tfrecords",
                tasks + "_tfrecords" + ("-debug" if self.debug else "")),
            "test_predictions_dir": os.path.join(pretrained_dir, "test_predictions"),
        }
        for key, value in derived.items():
            if key not in kwargs:
                setattr(self, key, value)

    def validate(self):
        """The shared checks, the model's sizes, a non-empty list of tasks, and a data
        source every task has."""
        super().validate()
        self.bert_config()  # checks `model_size` and `model_hparam_overrides`
        if isinstance(self.task_names, str) or not self.task_names:
            raise ValueError(f"task_names must be a non-empty list, got {self.task_names!r}")
        if self.data_source not in DATA_SOURCES:
            raise ValueError(f"data_source must be one of {', '.join(DATA_SOURCES)}, "
                             f"got {self.data_source!r}")
        if self.data_source == "tfds":
            from finetune.tasks import TFDS_TASKS  # noqa: PLC0415 (loads TensorFlow)

            missing = [t for t in self.task_names if t not in TFDS_TASKS]
            if missing:
                raise ValueError(f"data_source \"tfds\": no tensorflow-datasets source for "
                                 f"{', '.join(missing)}; the tasks that have one: "
                                 f"{', '.join(TFDS_TASKS)}")

    def _check_architecture(self, explicit):
        """Raises `ValueError` if the encoder's shape is not the pretrained model's."""
        pretrained = self._architecture.get("encoder")
        if not pretrained:
            return
        mine = encoder_shape(self)
        problems = [f"{self._key_of(field, explicit)}: {field} = {mine[field]!r} here, "
                    f"{pretrained[field]!r} in {self._architecture['file']}"
                    for field in pretrained if mine[field] != pretrained[field]]
        if problems:
            raise ValueError("the fine-tuning hparams disagree with the pretrained model's "
                             "architecture: " + "; ".join(problems) + ". Leave them out to "
                             "fine-tune the pretrained encoder as it is")

    def _key_of(self, field, explicit):
        """The hparam that gave the encoder field `field` its value here."""
        if field in ("vocab_size", "embedding_size") and field in explicit:
            return field
        if field in explicit.get("model_hparam_overrides", {}):
            return f"model_hparam_overrides.{field}"
        if self.debug and field in DEBUG_MODEL:
            return "debug"
        return " / ".join(k for k in ("model_size", "model_hparam_overrides", "embedding_size")
                          if k in explicit) or "the hparams"

    def architecture_line(self):
        """Where the encoder's architecture came from, in one line."""
        values = ", ".join(f"{k} {getattr(self, k)!r}" for k in ARCHITECTURE)
        source = self._architecture["file"]
        if source:
            line = f"architecture: from {source} (the pretrained model): {values}"
            saved = self._architecture["hparams"]["do_lower_case"]
            if self.do_lower_case != saved:
                line += f" (do_lower_case given; {saved!r} there)"
            return line
        why = (f"{self.init_checkpoint} has no config.json" if self.init_checkpoint
               else "no init_checkpoint: random weights")
        return f"architecture: from the hparams ({why}): {values}"

    def non_defaults(self):
        """{hparam: value} of the resolved values that differ from the defaults of this
        model, data directory and tasks (the pretrained architecture counts as default)."""
        reference = type(self)(self._args["model_name"], self._args["data_dir"],
                               self._architecture, task_names=self.task_names).to_dict()
        return {k: v for k, v in self.to_dict().items() if reference.get(k) != v}

    @classmethod
    def load(cls, path):
        """A config saved by `save`, with the architecture it was resolved with (not read
        again from the pretrained model directory, which may have changed since)."""
        payload = files.read_json(path)
        if isinstance(payload, dict) and "architecture" in payload:
            return cls(payload.get("model_name"), payload.get("data_dir"),
                       payload["architecture"], **payload.get("hparams", {}))
        return super().load(path)  # saved before the architecture was recorded

    def bert_config(self):
        """The encoder's `BertConfig` (debug: L=3, H=144, as the original FinetuningModel)."""
        return get_bert_config(self)

    def raw_data_dir(self, task_name):
        """`<data_dir>/finetuning_data/<task>`."""
        return os.path.join(self.data_dir, "finetuning_data", task_name)

    def test_predictions(self, task_name, split, trial):
        """Where test-set predictions go (JSON, not the original's pickle)."""
        return os.path.join(self.test_predictions_dir,
                            f"{task_name}_{split}_{trial}_predictions.json")

    def _qa_file(self, task_name, kind):
        tasks = ",".join(self.task_names)
        return os.path.join(os.path.dirname(self.results_json), tasks + "_qa",
                            f"{task_name}_{kind}.json")

    def qa_eval_file(self, task_name):
        """`<models>/<name>/results/<tasks>_qa/<task>_eval.json`: the QA scores."""
        return self._qa_file(task_name, "eval")

    def qa_preds_file(self, task_name):
        """`.../<tasks>_qa/<task>_preds.json`: the best answer text per question id."""
        return self._qa_file(task_name, "preds")

    def qa_na_file(self, task_name):
        """`.../<tasks>_qa/<task>_null_odds.json`: SQuAD 2.0 null odds per question id."""
        return self._qa_file(task_name, "null_odds")


def default_init_checkpoint(data_dir, model_name, debug):
    """The pretrained model `<data_dir>/models/<model_name>`, or None in debug mode."""
    return None if debug else os.path.join(data_dir, "models", model_name)


def encoder_shape(config):
    """{`ENCODER_FIELDS`..., "embedding_size"} of the encoder `config` describes (a
    pretraining or fine-tuning config, or any object with their model fields)."""
    bert = get_bert_config(config)
    shape = {k: v for k, v in bert.to_dict().items() if k in ENCODER_FIELDS}
    return dict(shape, embedding_size=embedding_size(config, bert))


def pretrained_architecture(init_checkpoint):
    """The `ARCHITECTURE` hparams of a pretrained model directory, from its config.json.

    A pretraining run with `debug` used the debug transformer (`DEBUG_MODEL`): its sizes
    are returned as `model_hparam_overrides`, so a fine-tuning run without `debug` builds
    the very encoder it trained.

    Args:
        init_checkpoint: a path, or None.
    Returns:
        {"file": the config.json, "hparams": {hparam: value}, "encoder": `encoder_shape`
        of the pretrained discriminator}; or {"file": None, "hparams": {}} when
        `init_checkpoint` is None or has no config.json (an original TF1 checkpoint).
    Raises:
        ValueError: the config.json lacks the resolved values.
    """
    path = os.path.join(init_checkpoint, PRETRAINED_CONFIG_FILE) if init_checkpoint else None
    if path is None or not files.exists(path):
        return {"file": None, "hparams": {}}
    resolved = files.read_json(path)
    resolved = resolved.get("resolved") if isinstance(resolved, dict) else None
    missing = [k for k in ARCHITECTURE + ("debug",) if not isinstance(resolved, dict)
               or k not in resolved]
    if missing:
        raise ValueError(f"{path}: no resolved {', '.join(missing)} (not a config.json "
                         "written by electra-tf pretraining or convert_checkpoint)")
    hparams = {k: resolved[k] for k in ARCHITECTURE}
    if resolved["debug"]:
        hparams["model_hparam_overrides"] = {**hparams["model_hparam_overrides"], **DEBUG_MODEL}
    encoder = encoder_shape(types.SimpleNamespace(**resolved))
    return {"file": path, "hparams": json.loads(json.dumps(hparams)), "encoder": encoder}
