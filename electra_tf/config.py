"""Every pretraining hyperparameter of the original ELECTRA, its default, and their order.

This is the one place where pretraining defaults live (documented in docs/configuration.md).
`PretrainingConfig` reproduces `configure_pretraining.PretrainingConfig`,
`get_bert_config` reproduces `util/training_utils.get_bert_config` (plus the debug-size
override of `PretrainingModel`) and `get_generator_config` reproduces
`run_pretraining.get_generator_config`.
"""

import dataclasses
import os

from electra_tf.hparams import HParams, check_known

# Transformer width and depth per `model_size`.
MODEL_SIZES = {"small": (256, 12), "base": (768, 12), "large": (1024, 24)}

# How the global-norm clip counts a gradient of a table looked up by gather (docs/optimizer.md):
# "per_lookup" squares its unsummed rows (the original off TPU), "dense" the summed gradient
# (the original's one-hot lookups on TPU).
CLIP_NORMS_OF_SPARSE_GRADIENTS = ("per_lookup", "dense")
CLIP_NORM_OF_SPARSE_GRADIENTS_MEANING = (
    'how the global-norm clip counts the word-embedding gradient of lookups: "per_lookup" '
    '(each lookup\'s row, as the original off TPU) or "dense" (rows of one id summed, as on '
    'TPU); None: "dense" if use_tpu else "per_lookup"')

# The transformer used when `debug` is set, applied before the generator is sized.
DEBUG_MODEL = {"num_hidden_layers": 3, "hidden_size": 144, "intermediate_size": 576,
               "num_attention_heads": 4}


@dataclasses.dataclass
class BertConfig:
    """The transformer hyperparameters of the original `modeling.BertConfig`."""

    vocab_size: int
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02

    @classmethod
    def from_dict(cls, values):
        """Builds a config from a dict; unlike the original, an unknown key is an error."""
        check_known(values, {f.name for f in dataclasses.fields(cls)}, "BertConfig field")
        return cls(**values)

    def to_dict(self):
        return dataclasses.asdict(self)


# What each hparam means (`--list-hparams`; the field table of docs/configuration.md).
MEANINGS = {
    "model_name": "the model directory is <data_dir>/models/<model_name>",
    "debug": "small batch, few steps, a 3-layer H=144 transformer",
    "do_train": "pre-train; exactly one of do_train / do_eval must be true",
    "do_eval": "evaluate the latest checkpoint on the pretraining records",
    "electra_objective": "replaced-token detection; False: the BERT-style MLM baseline "
                         "(no discriminator)",
    "electric_objective": "Electric; forces two_tower_generator",
    "gen_weight": "weight of the generator (MLM or cloze) loss",
    "disc_weight": "weight of the discriminator loss",
    "mask_prob": "share of tokens selected for masking",
    "learning_rate": "peak learning rate",
    "lr_decay_power": "polynomial decay power (1.0 = linear)",
    "weight_decay_rate": "decoupled weight decay",
    "num_warmup_steps": "warm-up steps (the warm-up multiplies the decaying LR)",
    "iterations_per_loop": "steps per compiled training loop; also the interval of progress "
                           "lines and TensorBoard scalars",
    "save_checkpoints_steps": "checkpoint interval",
    "num_train_steps": "optimizer updates to train",
    "num_eval_steps": "batches per evaluation",
    "eval_every_steps": "run the eval every N training steps and write its metrics to "
                        "TensorBoard; 0: no eval during training",
    "eval_tfrecords": "glob of held-out pretraining records for evaluation; None: the "
                      "training records, as the original",
    "keep_checkpoint_max": "checkpoints kept; 0 or None keeps every one",
    "model_size": '"small", "base" or "large" (sets H and L)',
    "model_hparam_overrides": "BertConfig fields to override (an unknown key is an error)",
    "embedding_size": 'E; None means H. Set to 128 for model_size "small"',
    "vocab_size": "V; must equal the number of lines of vocab.txt",
    "do_lower_case": "unused by pretraining (as in the original); the SavedModel export "
                     "lower-cases raw text when True",
    "uniform_generator": "no generator network: fake tokens drawn uniformly from the vocabulary",
    "two_tower_generator": "Electric's two-tower cloze generator",
    "untied_generator_embeddings": "False: the generator shares the discriminator's whole "
                                   "embedding block",
    "untied_generator": "False: generator and discriminator are one network",
    "generator_layers": "generator depth as a fraction of L",
    "generator_hidden_size": "generator width as a fraction of H",
    "disallow_correct": "subtract 1000 from the original token's logit before sampling",
    "temperature": "generator logits are divided by it before sampling",
    "max_seq_length": "S; every record must have exactly this length",
    "train_batch_size": "global batch (all replicas, all workers)",
    "eval_batch_size": "global eval batch",
    "use_tpu": 'True also selects strategy "tpu"',
    "num_tpu_cores": "accepted for compatibility; the TPU strategy uses every core it finds",
    "tpu_job_name": "accepted for compatibility",
    "tpu_name": "the TPU to connect to",
    "tpu_zone": "the TPU to connect to",
    "gcp_project": "the TPU to connect to",
    "precision": '"float32", "mixed_bfloat16", "mixed_float16" (with dynamic loss scaling) or '
                 '"auto": the fastest this hardware runs (bfloat16 on TPUs, Ampere GPUs and '
                 'CPUs with AVX512_BF16/AMX; logged with the reason)',
    "strategy": '"default", "mirrored" (all local GPUs), "multi_worker" (the cluster in '
                'TF_CONFIG), "tpu"',
    "jit_compile": "compile the training step with XLA",
    "seed": "the run seed (data order, initial weights, masking, sampling, dropout); None "
            "draws one and stores it in the checkpoint",
    "gradient_accumulation_steps": "micro-batches of train_batch_size per optimizer update",
    "clip_norm_of_sparse_gradients": CLIP_NORM_OF_SPARSE_GRADIENTS_MEANING,
    "pretrain_tfrecords": "comma-separated glob patterns of the pretraining records",
    "vocab_file": "the WordPiece vocabulary",
    "model_dir": "checkpoints, config.json, results",
    "results_txt": "eval results, key = value lines",
    "results_json": "eval results as JSON",
    "max_predictions_per_seq": "derived, cannot be passed: N = int((mask_prob + 0.005) * "
                               "max_seq_length)",
}


class PretrainingConfig(HParams):
    """Every pretraining hyperparameter, assembled exactly as the original does.

    Order: defaults → kwargs → `max_predictions_per_seq` → debug defaults → size defaults
    (`embedding_size` 128 for small) → Electric's two-tower generator → kwargs again, so
    explicit values win.

    Args:
        model_name: name of the model; the model directory is `<data_dir>/models/<model_name>`.
        data_dir: directory holding `pretrain_tfrecords/`, `vocab.txt` and `models/`.
        **kwargs: hyperparameter overrides. An unknown name raises `ValueError`.

    Example:
    ```python
    config = PretrainingConfig("my-electra", "/data", model_size="base", debug=True)
    config.train_batch_size  # 8, the debug default
    ```
    """

    DERIVED = ("max_predictions_per_seq",)
    MEANINGS = MEANINGS
    # Safe to change when resuming: how long and how often, where, and on what hardware.
    # (More steps also stretch the learning-rate decay, as in the original.)
    RESUMABLE = ("model_name", "debug", "do_train", "do_eval", "num_train_steps",
                 "iterations_per_loop", "save_checkpoints_steps", "num_eval_steps",
                 "eval_every_steps", "eval_tfrecords",
                 "keep_checkpoint_max", "eval_batch_size", "do_lower_case",
                 "pretrain_tfrecords", "vocab_file", "model_dir", "results_txt",
                 "results_json", "use_tpu", "num_tpu_cores", "tpu_job_name", "tpu_name",
                 "tpu_zone", "gcp_project", "precision", "strategy", "jit_compile",
                 "clip_norm_of_sparse_gradients")

    def __init__(self, model_name, data_dir, **kwargs):
        self.model_name = model_name
        self.debug = False  # small batch, few steps and a 3-layer 144-wide transformer
        self.do_train = True  # pre-train ELECTRA
        self.do_eval = False  # evaluate generator/discriminator on the pretraining records

        # loss functions
        self.electra_objective = True  # replaced token detection; False = BERT-style MLM
        self.electric_objective = False  # Electric (forces the two-tower generator)
        self.gen_weight = 1.0  # weight of the generator's MLM loss
        self.disc_weight = 50.0  # weight of the discriminator's replaced-token loss
        self.mask_prob = 0.15  # share of tokens selected for masking

        # optimization
        self.learning_rate = 5e-4
        self.lr_decay_power = 1.0  # polynomial decay power; 1.0 = linear
        self.weight_decay_rate = 0.01
        self.num_warmup_steps = 10000

        # training loop
        self.iterations_per_loop = 200  # steps per TPU loop; also how often progress is logged
        self.save_checkpoints_steps = 1000
        self.num_train_steps = 1000000
        self.num_eval_steps = 100
        self.eval_every_steps = 0  # eval during training every N steps (ours); 0: never
        self.eval_tfrecords = None  # held-out records to evaluate on (ours); None: training's
        self.keep_checkpoint_max = 5  # 0 or None keeps every checkpoint

        # model
        self.model_size = "small"  # "small", "base" or "large"
        self.model_hparam_overrides = kwargs.get("model_hparam_overrides", {})
        self.embedding_size = None  # None means the hidden size; set to 128 for "small"
        self.vocab_size = 30522
        self.do_lower_case = True  # unused in pretraining, as in the original

        # generator
        self.uniform_generator = False  # fake tokens sampled uniformly from the vocabulary
        self.two_tower_generator = False  # Electric's two-tower cloze generator
        self.untied_generator_embeddings = False  # False: share the whole embedding block
        self.untied_generator = True  # False: generator and discriminator are one network
        self.generator_layers = 1.0  # generator depth as a fraction of the discriminator's
        self.generator_hidden_size = 0.25  # generator width as a fraction of the discriminator's
        self.disallow_correct = False  # never sample the original token
        self.temperature = 1.0  # sampling temperature of the generator

        # batch sizes
        self.max_seq_length = 128
        self.train_batch_size = 128
        self.eval_batch_size = 128

        self.set_runtime_defaults()
        self.gradient_accumulation_steps = 1  # micro-batches per optimizer update (ours)
        # "per_lookup" or "dense" (ours: the original follows use_tpu); None: from use_tpu
        self.clip_norm_of_sparse_gradients = None

        # paths, derived from the constructor arguments before any update (as the original)
        self.pretrain_tfrecords = os.path.join(
            data_dir, "pretrain_tfrecords/pretrain_data.tfrecord*")
        self.vocab_file = os.path.join(data_dir, "vocab.txt")
        self.model_dir = os.path.join(data_dir, "models", model_name)
        results_dir = os.path.join(self.model_dir, "results")
        self.results_txt = os.path.join(results_dir, "unsup_results.txt")
        # The original names a pickle here and never writes it; we write JSON.
        self.results_json = os.path.join(results_dir, "unsup_results.json")

        self.update(kwargs)
        # Derived after the first update, so it cannot itself be passed as an hparam.
        self.max_predictions_per_seq = int((self.mask_prob + 0.005) * self.max_seq_length)

        if self.debug:
            self.train_batch_size = 8
            self.num_train_steps = 20
            self.eval_batch_size = 4
            self.iterations_per_loop = 1
            self.num_eval_steps = 2
        if self.model_size == "small":
            self.embedding_size = 128
        if self.electric_objective:
            self.two_tower_generator = True
        # Passed values beat the debug and size defaults.
        self.update(kwargs)
        self.clip_norm_of_sparse_gradients = clip_norm_of_sparse_gradients(self)
        self.finish(model_name, data_dir, kwargs)

    def validate(self):
        super().validate()
        every = self.eval_every_steps
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"eval_every_steps must be a non-negative integer (0: no eval "
                             f"during training), got {every!r}")
        if self.eval_tfrecords is not None and not (
                isinstance(self.eval_tfrecords, str) and self.eval_tfrecords):
            raise ValueError("eval_tfrecords must be a glob pattern of TFRecord files, or "
                             f"null for the training records, got {self.eval_tfrecords!r}")
        get_bert_config(self)  # checks `model_size` and `model_hparam_overrides`


def clip_norm_of_sparse_gradients(config):
    """The config's `clip_norm_of_sparse_gradients`, or the original's choice for its
    platform when None: "dense" with `use_tpu` (one-hot lookups), else "per_lookup".

    Raises:
        ValueError: any other value.
    """
    value = config.clip_norm_of_sparse_gradients
    if value is None:
        return "dense" if config.use_tpu else "per_lookup"
    if value not in CLIP_NORMS_OF_SPARSE_GRADIENTS:
        raise ValueError(f"clip_norm_of_sparse_gradients must be one of "
                         f"{', '.join(CLIP_NORMS_OF_SPARSE_GRADIENTS)} or None (from use_tpu), "
                         f"got {value!r}")
    return value


def get_bert_config(config):
    """The discriminator's transformer config (the debug transformer in debug mode).

    Args:
        config: a `PretrainingConfig` (or any object with `model_size`, `vocab_size`,
            `model_hparam_overrides` and `debug`).
    Returns:
        A `BertConfig`.
    """
    hint = (" (embedding_size is a top-level hparam, not a model override)"
            if "embedding_size" in config.model_hparam_overrides else "")
    check_known(config.model_hparam_overrides, {f.name for f in dataclasses.fields(BertConfig)},
                "model_hparam_overrides key", hint)
    if config.model_size not in MODEL_SIZES:
        raise ValueError(f"model_size must be one of {', '.join(MODEL_SIZES)}, "
                         f"got {config.model_size!r}")
    hidden_size, num_layers = MODEL_SIZES[config.model_size]
    values = {"hidden_size": hidden_size, "num_hidden_layers": num_layers,
              "vocab_size": config.vocab_size}
    values.update(config.model_hparam_overrides)
    # Heads and FFN size follow the (possibly overridden) width, unless overridden too.
    values["num_attention_heads"] = max(1, values["hidden_size"] // 64)
    values["intermediate_size"] = 4 * values["hidden_size"]
    values.update(config.model_hparam_overrides)
    if config.debug:
        values.update(DEBUG_MODEL)
    return BertConfig.from_dict(values)


def get_generator_config(config, bert_config):
    """The generator's transformer config, sized from the discriminator's.

    Heads and FFN size are always re-derived, so overrides of them do not reach it.
    """
    hidden_size = int(round(bert_config.hidden_size * config.generator_hidden_size))
    return dataclasses.replace(
        bert_config,
        hidden_size=hidden_size,
        num_hidden_layers=int(round(bert_config.num_hidden_layers * config.generator_layers)),
        intermediate_size=4 * hidden_size,
        num_attention_heads=max(1, hidden_size // 64))


def embedding_size(config, bert_config):
    """E: the width of the (shared) embedding tables; the hidden size when unset."""
    return config.embedding_size or bert_config.hidden_size
