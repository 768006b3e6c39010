"""Every fine-tuning hyperparameter, its default, and the order defaults apply in.

`FinetuningConfig` reproduces the original `configure_finetuning.FinetuningConfig`
(documented in docs/finetuning.md). Model sizing reuses `electra_tf.config.get_bert_config`.
"""

import os

from electra_common import files
from electra_tf.config import get_bert_config
from electra_tf.hparams import HParams

# Names that select the QA defaults by *substring*: "naturalqs" has neither.
_QA_SUBSTRINGS = ("squad", "qa")


class FinetuningConfig(HParams):
    """Every fine-tuning hyperparameter, assembled exactly as the original.

    Order: defaults → kwargs → single-task defaults → size defaults → debug defaults →
    kwargs again, so explicit values always win.

    Unlike the original, the paths that depend on `debug` (`init_checkpoint`,
    `preprocessed_data_dir`) are derived *after* the kwargs, so `"debug": true` starts
    from random weights and uses its own `-debug` records, as documented (the original
    computed them first, so the flag had no effect there).

    Args:
        model_name: the pretrained model's name: `<data_dir>/models/<model_name>`.
        data_dir: directory holding `finetuning_data/<task>/`, `vocab.txt` and `models/`.
        **kwargs: hyperparameter overrides. An unknown name raises `ValueError`.

    Example:
    ```python
    config = FinetuningConfig("electra_small", "/data", task_names=["rte"])
    config.num_train_epochs, config.embedding_size   # 10.0 128
    ```
    """

    def __init__(self, model_name, data_dir, **kwargs):
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
        self._derive_paths(kwargs)
        self.finish(model_name, data_dir, kwargs)

    def _derive_paths(self, kwargs):
        """The original's paths, after the kwargs so that `debug` takes effect."""
        pretrained_dir = os.path.join(self.data_dir, "models", self.model_name)
        tasks = ",".join(self.task_names)
        results_dir = os.path.join(pretrained_dir, "results")
        own_vocab = os.path.join(pretrained_dir, "vocab.txt")
        derived = {
            "vocab_file": own_vocab if files.exists(own_vocab)
            else os.path.join(self.data_dir, "vocab.txt"),
            "init_checkpoint": None if self.debug else pretrained_dir,
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
        """The shared checks, the model's sizes, and a non-empty list of tasks."""
        super().validate()
        self.bert_config()  # checks `model_size` and `model_hparam_overrides`
        if isinstance(self.task_names, str) or not self.task_names:
            raise ValueError(f"task_names must be a non-empty list, got {self.task_names!r}")

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
