"""The main job: pretrain a debug-size ELECTRA end to end on a generated corpus, on CPU.

    python -m electra_tf.quickstart [--output-dir demo_output] [--num-train-steps 400]

Every stage is the real one: a generated corpus (no download) → a WordPiece vocabulary
learned from it → pretraining TFRecords → the untrained model evaluated → pretraining with
progress and checkpoints → evaluated again → the original-layout TF1 checkpoint → a
SavedModel for TF Serving, loaded back and queried with raw sentences. Each run writes a
new run-<n> directory under the output directory and never touches earlier ones.
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("output-dir", "demo_output", "Where the run directory is created.",
                        flag_values=fv)
    flags.DEFINE_integer("num-train-steps", 400, "Pretraining steps.", flag_values=fv)
    flags.DEFINE_integer("num-documents", 2000, "Documents in the generated corpus.",
                         flag_values=fv)


def main(args):
    from electra_tf.end_to_end import run_end_to_end  # noqa: PLC0415 (after the flags)

    run_end_to_end(args.output_dir, args.num_train_steps, args.num_documents)


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
