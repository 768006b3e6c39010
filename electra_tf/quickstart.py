"""The main job: pretrain a debug-size ELECTRA end to end on a generated corpus, on CPU.

    python -m electra_tf.quickstart [--output-dir demo_output] [--num-train-steps 400]

Every stage is the real one: a generated corpus (no download) → a WordPiece vocabulary
learned from it → pretraining TFRecords → the untrained model evaluated → pretraining with
progress and checkpoints → evaluated again → the original-layout TF1 checkpoint → a
SavedModel for TF Serving, loaded back and queried with raw sentences. It reports the
discriminator AUC and the generator accuracy before and after, and each token's
replaced-token probability from the SavedModel. Each run writes a new `run-<n>` directory
under the output directory and never touches earlier ones.
"""

import os
import sys
import time

import tensorflow as tf
from absl import flags

from electra_tf import cli, config as config_lib
from electra_tf import export_saved_model, training
from pretrain_data import build_pretraining_dataset, learn_vocab, synthetic

flags.DEFINE_string("output-dir", "demo_output", "Where the run directory is created.")
flags.DEFINE_integer("num-train-steps", 400, "Pretraining steps.")
flags.DEFINE_integer("num-documents", 2000, "Documents in the generated corpus.")
FLAGS = flags.FLAGS

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
    vocab = learn_vocab.learn_vocab_from_corpus(corpus, vocab_file, vocab_size=vocab_size)
    log(f"learned a {len(vocab)}-token WordPiece vocabulary: {vocab_file}")
    summary = build_pretraining_dataset.build_pretraining_dataset(
        corpus, vocab_file, os.path.join(data_dir, "pretrain_tfrecords"),
        max_seq_length=max_seq_length, num_out_files=8, seed=0, progress=False)
    log(f"pretraining records: {summary}")
    return len(vocab)


def query_export(export_dir, sentences, log=print):
    """Loads a SavedModel as a server does and logs each token's replaced probability."""
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    out = serve(text=tf.constant(sentences))
    for tokens, mask, probabilities in zip(out["tokens"].numpy(), out["input_mask"].numpy(),
                                           out["replaced_probability"].numpy()):
        log("  ".join(f"{token.decode()} {p:.2f}"
                      for token, real, p in zip(tokens, mask, probabilities) if real))


def main(argv):
    del argv
    start = time.time()
    data_dir = new_run_dir(FLAGS["output-dir"].value)
    print(f"Quickstart in {data_dir}")
    vocab_size = prepare_data(data_dir, FLAGS["num-documents"].value, HPARAMS["max_seq_length"])
    config = config_lib.PretrainingConfig(
        "electra-debug", data_dir, vocab_size=vocab_size,
        num_train_steps=FLAGS["num-train-steps"].value, **HPARAMS)
    trainer = training.Pretrainer(config)
    before = trainer.evaluate(write=False)
    trainer.train()
    after = trainer.evaluate()
    print(f"\n{'metric':<28}{'before':>10}{'after':>10}")
    for key in REPORTED:
        print(f"{key:<28}{before[key]:>10.4f}{after[key]:>10.4f}")
    print(f"\nmodel directory: {config.model_dir} (original-layout checkpoint in "
          f"{os.path.join(config.model_dir, 'original')})")
    print(f"results: {config.results_json}")
    export_dir = export_saved_model.export_saved_model(config.model_dir,
                                                       os.path.join(data_dir, "export"))
    print(f"\nSavedModel for TF Serving: {export_dir}\nreplaced-token probability of each "
          f"token, from the loaded SavedModel (raw text in):")
    query_export(export_dir, QUERIES)
    print(f"total time {time.time() - start:.0f} s")
    if after["disc_auc"] <= before["disc_auc"]:
        sys.exit("error: the discriminator did not improve")


if __name__ == "__main__":
    cli.run(main)
