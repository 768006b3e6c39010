"""The main job as a library call: every stage of ELECTRA on a generated corpus, on CPU.

A generated corpus (no download) → a WordPiece vocabulary learned from it → pretraining
TFRecords → the untrained model evaluated → pretraining with progress and checkpoints →
evaluated again → the original-layout TF1 checkpoint → a SavedModel for TF Serving, loaded
back and queried with raw sentences. Each run writes a new `run-<n>` directory under the
output directory and never touches earlier ones.
"""

import os
import time

import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.pretraining.trainer import Pretrainer
from electra_tf.serving.export import export_saved_model
from pretrain_data import build, synthetic, vocab

# A debug-size ELECTRA (the original's debug transformer: 3 layers, H=144; generator 36).
HPARAMS = {"debug": True, "max_seq_length": 64, "train_batch_size": 32, "eval_batch_size": 32,
           "learning_rate": 1e-3, "num_warmup_steps": 40, "iterations_per_loop": 50,
           "save_checkpoints_steps": 200, "num_eval_steps": 20, "embedding_size": 64,
           "seed": 1}
# A sentence of the generated grammar, and the same with its verb replaced by a noun.
QUERIES = ["the open license grants the copyright .", "the open license copyright the copyright ."]
REPORTED = ("disc_auc", "disc_accuracy", "masked_lm_accuracy", "sampled_masked_lm_accuracy",
            "loss")


def new_run_dir(output_dir):
    """`output_dir/run-<n>` for the first n not taken."""
    n = 1
    while os.path.exists(os.path.join(output_dir, f"run-{n}")):
        n += 1
    return os.path.join(output_dir, f"run-{n}")


def prepare_data(data_dir, num_documents, max_seq_length, vocab_size=2000, log=print):
    """Writes `corpus/`, `vocab.txt` and `pretrain_tfrecords/` into `data_dir`.

    Returns:
        The number of tokens in the vocabulary.
    """
    corpus = os.path.join(data_dir, "corpus")
    synthetic.write_corpus(corpus, num_documents=num_documents, seed=0)
    vocab_file = os.path.join(data_dir, "vocab.txt")
    learned = vocab.learn_vocab_from_corpus(corpus, vocab_file, vocab_size=vocab_size)
    log(f"learned a {len(learned)}-token WordPiece vocabulary: {vocab_file}")
    summary = build.build_pretraining_dataset(
        corpus, vocab_file, os.path.join(data_dir, "pretrain_tfrecords"),
        max_seq_length=max_seq_length, num_out_files=8, seed=0, progress=False)
    log(f"pretraining records: {summary}")
    return len(learned)


def query_export(export_dir, sentences, log=print):
    """Loads a SavedModel as a server does and logs each token's replaced probability."""
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    out = serve(text=tf.constant(sentences))
    for tokens, mask, probabilities in zip(out["tokens"].numpy(), out["input_mask"].numpy(),
                                           out["replaced_probability"].numpy()):
        log("  ".join(f"{token.decode()} {p:.2f}"
                      for token, real, p in zip(tokens, mask, probabilities) if real))


def run_end_to_end(output_dir="demo_output", num_train_steps=400, num_documents=2000,
                   log=print):
    """Runs every stage (see the module docstring) in a new `output_dir/run-<n>`.

    Returns:
        (metrics before training, metrics after training, the export directory).
    Raises:
        FloatingPointError: the discriminator's AUC did not improve.
    """
    start = time.time()
    data_dir = new_run_dir(output_dir)
    log(f"Quickstart in {data_dir}")
    vocab_size = prepare_data(data_dir, num_documents, HPARAMS["max_seq_length"], log=log)
    config = PretrainingConfig("electra-debug", data_dir, vocab_size=vocab_size,
                               num_train_steps=num_train_steps, **HPARAMS)
    trainer = Pretrainer(config, log=log)
    before = trainer.evaluate(write=False)
    trainer.train()
    after = trainer.evaluate()
    log(f"\n{'metric':<28}{'before':>10}{'after':>10}")
    for key in REPORTED:
        log(f"{key:<28}{before[key]:>10.4f}{after[key]:>10.4f}")
    log(f"\nmodel directory: {config.model_dir} (original-layout checkpoint in "
        f"{os.path.join(config.model_dir, 'original')})")
    log(f"results: {config.results_json}")
    export_dir = export_saved_model(config.model_dir, os.path.join(data_dir, "export"))
    log(f"\nSavedModel for TF Serving: {export_dir}\nreplaced-token probability of each "
        "token, from the loaded SavedModel (raw text in):")
    query_export(export_dir, QUERIES, log)
    log(f"total time {time.time() - start:.0f} s")
    if after["disc_auc"] <= before["disc_auc"]:
        raise FloatingPointError("the discriminator did not improve")
    return before, after, export_dir
