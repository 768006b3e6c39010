"""The main job as a library call: the whole mission of ELECTRA on generated data, on CPU.

One function per stage, in the order `run_quickstart` runs them in a new `run-<n>`
directory (earlier runs are never touched):

1. `prepare_data`: a generated corpus (no download) → a WordPiece vocabulary learned from
   it → pretraining TFRecords.
2. `pretrain`: a debug-size ELECTRA evaluated, pretrained (with evals on the way, for
   TensorBoard and the learning curves) and evaluated again.
3. `finetune`: a generated classification task in the corpus's words — is a sentence as
   the grammar makes it, or has a word been replaced by one that cannot stand there? —
   scored on dev with the pretrained encoder and a new head, fine-tuned, scored again.
4. `export_saved_model` (of `electra_tf.serving.export`): both model directories as
   SavedModels for TF Serving.
5. `query_discriminator`, `query_classifier`: both SavedModels loaded back as a server
   loads them and queried with raw sentences.
"""

import dataclasses
import os
import time

import keras
import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.pretraining import trainer
from electra_tf.pretraining.trainer import Pretrainer
from electra_tf.serving.export import export_saved_model
from electra_tf.training import distribute
from finetune import synthetic as finetuning_data
from finetune import model_dir
from finetune import tasks as tasks_lib
from finetune import trials
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model
from pretrain_data import build, synthetic, vocab
from pretrain_data.tokenization import FullTokenizer

MODEL_NAME = "electra-debug"
# A debug-size ELECTRA (the original's debug transformer: 3 layers, H=144; generator 36),
# evaluated every 100 steps so that TensorBoard and the learning curves have eval points.
HPARAMS = {"debug": True, "max_seq_length": 64, "train_batch_size": 32, "eval_batch_size": 32,
           "learning_rate": 1e-3, "num_warmup_steps": 40, "iterations_per_loop": 50,
           "save_checkpoints_steps": 200, "num_eval_steps": 20, "eval_every_steps": 100,
           "embedding_size": 64, "seed": 1}
# Fine-tuning: the architecture comes from the pretrained model's config.json. The
# sentences are short (at most 9 word pieces with [CLS] and [SEP]).
FINETUNING_HPARAMS = {"task_names": ["sst"], "max_seq_length": 16, "learning_rate": 5e-4,
                      "seed": 1}
FINETUNING_EXAMPLES = {"train": 600, "dev": 200, "test": 20}
LABELS = {"1": "as the grammar makes it", "0": "a word replaced"}
# A sentence of the generated grammar, and the same with its verb replaced by a noun.
QUERIES = ["the open license grants the copyright .", "the open license copyright the copyright ."]
# The classifier also gets another sentence, and the same with its adjective replaced.
CLASSIFIER_QUERIES = QUERIES + ["the public source builds a copy .",
                                "the builds source builds a copy ."]
REPORTED = ("disc_auc", "disc_accuracy", "masked_lm_accuracy", "sampled_masked_lm_accuracy",
            "loss")


class DidNotLearn(FloatingPointError):
    """A stage's metric did not improve (a `FloatingPointError`, so the command line prints
    one line and exits 1)."""


@dataclasses.dataclass
class QuickstartResult:
    """What a run of the main job produced.

    Attributes:
        run_dir: the run's directory, `<output_dir>/run-<n>`.
        pretraining: (eval metrics before, after) pretraining.
        finetuning: (dev metrics before, after) fine-tuning, of the one task.
        exports: {"discriminator": SavedModel dir, "classifier": SavedModel dir}.
        curves: the learning-curve PNGs that exist (pretraining, fine-tuning).
        seconds: the wall time of each stage, and "total".
    """

    run_dir: str
    pretraining: tuple
    finetuning: tuple
    exports: dict
    curves: list
    seconds: dict


def new_run_dir(output_dir):
    """`output_dir/run-<n>` for the first n not taken."""
    n = 1
    while os.path.exists(os.path.join(output_dir, f"run-{n}")):
        n += 1
    return os.path.join(output_dir, f"run-{n}")


def prepare_data(data_dir, num_documents, max_seq_length, vocab_size=2000, log=print,
                 held_out=()):
    """Writes `corpus/`, `vocab.txt` and `pretrain_tfrecords/` into `data_dir`.

    Args:
        data_dir: the data directory (of pretraining and fine-tuning).
        num_documents: documents of the generated corpus.
        max_seq_length: the length of the pretraining records.
        vocab_size: the most tokens the learned vocabulary may have.
        log: where the two summary lines go.
        held_out: sentences the corpus leaves out (`synthetic.write_corpus`'s `exclude`).
    Returns:
        The number of tokens in the vocabulary.
    """
    corpus = os.path.join(data_dir, "corpus")
    synthetic.write_corpus(corpus, num_documents=num_documents, seed=0, exclude=held_out)
    vocab_file = os.path.join(data_dir, "vocab.txt")
    learned = vocab.learn_vocab_from_corpus(corpus, vocab_file, vocab_size=vocab_size)
    log(f"learned a {len(learned)}-token WordPiece vocabulary: {vocab_file}")
    summary = build.build_pretraining_dataset(
        corpus, vocab_file, os.path.join(data_dir, "pretrain_tfrecords"),
        max_seq_length=max_seq_length, num_out_files=8, seed=0, progress=False)
    log(f"pretraining records: {summary}")
    return len(learned)


def pretrain(data_dir, vocab_size, num_train_steps, log=print):
    """Evaluates the untrained model, pretrains it, evaluates it again.

    Args:
        data_dir: holds `vocab.txt` and `pretrain_tfrecords/` (see `prepare_data`).
        vocab_size: the vocabulary's size.
        num_train_steps: pretraining steps.
        log: where the progress and the end-of-run summary go.
    Returns:
        (the `PretrainingConfig`, eval metrics before, eval metrics after).
    """
    config = PretrainingConfig(MODEL_NAME, data_dir, vocab_size=vocab_size,
                               num_train_steps=num_train_steps, **HPARAMS)
    pretrainer = Pretrainer(config, log=log)
    before = pretrainer.evaluate()  # also TensorBoard's eval point at step 0
    pretrainer.train()
    return config, before, pretrainer.evaluate()


def finetune(data_dir, model_name, num_train_epochs):
    """Writes the generated task (`finetune.synthetic.write_coherence_data`) into
    `data_dir`, scores the pretrained encoder with a new head on dev, fine-tunes it (one
    trial) and scores it again. Prints as `finetune.trials` does.

    Args:
        data_dir: the data directory holding `vocab.txt` and `models/<model_name>`.
        model_name: the pretrained model.
        num_train_epochs: fine-tuning epochs.
    Returns:
        (the `FinetuningConfig`, dev metrics before, dev metrics after, the fine-tuned model
        directory).
    """
    finetuning_data.write_coherence_data(data_dir, **FINETUNING_EXAMPLES)
    config = FinetuningConfig(model_name, data_dir, num_train_epochs=num_train_epochs,
                              **FINETUNING_HPARAMS)
    task = config.task_names[0]
    tasks = tasks_lib.get_tasks(config, FullTokenizer(config.vocab_file, config.do_lower_case))
    strategy = distribute.get_strategy(config)
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        untuned = build_finetuning_model(config, tasks, config.init_checkpoint)
    print("before fine-tuning (the pretrained encoder, a new head):")
    before = trials.evaluate(config, untuned, tasks, strategy)[task]
    after = trials.run_finetuning(config, strategy)[0][task]
    return config, before, after, f"{config.model_dir}_1"


def query_discriminator(export_dir, sentences, log=print):
    """Loads a pretraining SavedModel as a server does and logs each token's replaced
    probability."""
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    out = serve(text=tf.constant(sentences))
    for tokens, mask, probabilities in zip(out["tokens"].numpy(), out["input_mask"].numpy(),
                                           out["replaced_probability"].numpy()):
        log("  ".join(f"{token.decode()} {p:.2f}"
                      for token, real, p in zip(tokens, mask, probabilities) if real))


def query_classifier(export_dir, sentences, log=print):
    """Loads a fine-tuned classifier's SavedModel as a server does and logs each sentence's
    label (and what it means, `LABELS`) with its probability.

    Returns:
        The labels, one per sentence.
    """
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    out = serve(text=tf.constant(sentences))
    labels = [label.decode() for label in out["label"].numpy()]
    width = max(map(len, sentences))
    for sentence, label, probabilities, label_id in zip(
            sentences, labels, out["probabilities"].numpy(), out["label_id"].numpy()):
        log(f"{sentence:<{width}}  {label} ({LABELS.get(label, label)}) "
            f"{probabilities[label_id]:.2f}")
    return labels


def check_improved(pretraining, finetuning):
    """Raises `DidNotLearn` unless pretraining raised the discriminator's AUC and
    fine-tuning raised the dev accuracy.

    Args:
        pretraining: (eval metrics before, after) with `disc_auc`.
        finetuning: (dev metrics before, after) with `accuracy`.
    """
    (before, after), (ft_before, ft_after) = pretraining, finetuning
    failed = []
    if after["disc_auc"] <= before["disc_auc"]:
        failed.append(f"pretraining did not improve disc_auc ({before['disc_auc']:.4f} → "
                      f"{after['disc_auc']:.4f})")
    if ft_after["accuracy"] <= ft_before["accuracy"]:
        failed.append(f"fine-tuning did not improve the dev accuracy "
                      f"({ft_before['accuracy']:.2f} → {ft_after['accuracy']:.2f})")
    if failed:
        raise DidNotLearn("; ".join(failed))


def table(title, keys, before, after, digits=4):
    """Lines of a before/after table of `keys`, values with `digits` decimals."""
    lines = [f"{title:<28}{'before':>10}{'after':>10}"]
    return lines + [f"{key:<28}{before[key]:>10.{digits}f}{after[key]:>10.{digits}f}"
                    for key in keys]


def run_quickstart(output_dir="demo_output", num_train_steps=400, num_documents=2000,
                   finetuning_epochs=3.0, log=print):
    """Runs every stage (see the module docstring) in a new `output_dir/run-<n>`.

    Args:
        output_dir: where the run directory is created.
        num_train_steps: pretraining steps.
        num_documents: documents of the generated corpus.
        finetuning_epochs: fine-tuning epochs.
        log: where the stages' lines go (fine-tuning prints).
    Returns:
        A `QuickstartResult`.
    Raises:
        DidNotLearn: pretraining did not improve the discriminator's AUC, or fine-tuning did
            not improve the dev accuracy (raised after every stage has run).
    """
    start = stage_start = time.monotonic()
    seconds = {}

    def lap(stage):
        nonlocal stage_start
        seconds[stage] = time.monotonic() - stage_start
        stage_start = time.monotonic()

    data_dir = new_run_dir(output_dir)
    log(f"Quickstart in {data_dir}\n\n[1/5] data")
    vocab_size = prepare_data(data_dir, num_documents, HPARAMS["max_seq_length"], log=log)
    lap("data")
    log("\n[2/5] pretraining")
    config, before, after = pretrain(data_dir, vocab_size, num_train_steps, log)
    lap("pretraining")
    log("\n[3/5] fine-tuning on the generated task: is a sentence as the grammar makes it?")
    ft_config, ft_before, ft_after, finetuned_dir = finetune(data_dir, config.model_name,
                                                             finetuning_epochs)
    lap("fine-tuning")
    log("\n[4/5] SavedModels for TF Serving")
    exports = {}
    for name, source in (("discriminator", config.model_dir), ("classifier", finetuned_dir)):
        exports[name] = export_saved_model(source, os.path.join(data_dir, "export", name))
        log(f"{name}: {exports[name]} (from {source})")
    lap("export")
    log("\n[5/5] both SavedModels loaded back and queried with raw text")
    answers = [f"discriminator {exports['discriminator']}: replaced-token probability of "
               "each token"]
    query_discriminator(exports["discriminator"], QUERIES, answers.append)
    answers.append(f"classifier {exports['classifier']}: label (meaning) probability")
    query_classifier(exports["classifier"], CLASSIFIER_QUERIES, answers.append)
    lap("answers")
    seconds["total"] = time.monotonic() - start

    curves = [path for path in (os.path.join(config.model_dir, trainer.CURVES_FILE),
                                os.path.join(finetuned_dir, model_dir.CURVES_FILE))
              if os.path.exists(path)]
    log("\n".join([
        f"\n===== Quickstart {data_dir}: every stage done", "",
        *table("pretraining (eval)", REPORTED, before, after), "",
        *table(f"fine-tuning ({ft_config.task_names[0]}, dev)", ("accuracy", "loss"),
               ft_before, ft_after, digits=2), "", *answers, "",
        "learning curves: " + ("\n                 ".join(curves) or "none written"),
        f"TensorBoard: tensorboard --logdir {os.path.join(data_dir, 'models')}",
        f"total time {seconds['total']:.0f} s (" + ", ".join(
            f"{stage} {s:.0f} s" for stage, s in seconds.items() if stage != "total") + ")"]))

    check_improved((before, after), (ft_before, ft_after))
    return QuickstartResult(data_dir, (before, after), (ft_before, ft_after), exports, curves,
                            seconds)
