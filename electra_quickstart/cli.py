"""The main job: the whole mission of ELECTRA on data it makes itself, on CPU.

    python -m electra_quickstart [--output-dir demo_output] [--num-train-steps 400]
                                 [--num-documents 2000] [--finetuning-epochs 3]

Every stage is the real one: a generated corpus (no download) → a WordPiece vocabulary
learned from it → pretraining TFRecords → a debug-size ELECTRA evaluated, pretrained and
evaluated again → fine-tuned on a generated classification task (is a sentence as the
corpus's grammar makes it, or has a word been replaced?), evaluated before and after →
both models exported as SavedModels for TF Serving → both loaded back and queried with raw
sentences. Each run writes a new run-<n> directory under the output directory and never
touches earlier ones. Exit status 1 if pretraining did not improve the discriminator's AUC
or fine-tuning did not improve the dev accuracy.
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("output-dir", "demo_output", "Where the run directory is created.",
                        flag_values=fv)
    flags.DEFINE_integer("num-train-steps", 400, "Pretraining steps.", flag_values=fv)
    flags.DEFINE_integer("num-documents", 2000, "Documents in the generated corpus.",
                         flag_values=fv)
    flags.DEFINE_float("finetuning-epochs", 3.0, "Fine-tuning epochs (of 600 examples).",
                       flag_values=fv)


def main(args):
    from electra_quickstart.pipeline import run_quickstart  # noqa: PLC0415 (after the flags)

    run_quickstart(args.output_dir, args.num_train_steps, args.num_documents,
                   args.finetuning_epochs)


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
