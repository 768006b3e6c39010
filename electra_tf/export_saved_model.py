"""Exports a model directory as a versioned SavedModel for TensorFlow Serving.

    python -m electra_tf.export_saved_model --model-dir DIR --output EXPORT_BASE [--version N]

DIR is a pretraining model directory (<data-dir>/models/<name>, from run_pretraining or
convert_checkpoint) or a fine-tuned one (a trial's .../finetuning_models/<tasks>_model_<n>).
The export goes to EXPORT_BASE/<version>/, the layout TF Serving watches with
--model_base_path=EXPORT_BASE; an existing version is never overwritten. The signatures
are listed in docs/serving.md (pretraining) and docs/finetuning.md (fine-tuned).
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("model-dir", None, "Model directory: pretraining "
                        "(<data-dir>/models/<name>) or fine-tuned (a trial's "
                        "<tasks>_model_<trial>).", flag_values=fv, required=True)
    flags.DEFINE_string("output", None, "Export base directory: the version goes in "
                        "OUTPUT/<N>/.", flag_values=fv, required=True)
    flags.DEFINE_integer("version", None, "Version number; default: 1 + the largest "
                         "existing.", flag_values=fv)
    flags.DEFINE_string("vocab-file", None, "Vocabulary; default: DIR/vocab.txt, else "
                        "<data-dir>/vocab.txt.", flag_values=fv)
    flags.DEFINE_integer("top-k", 10, "Generator predictions per [MASK] position.",
                         flag_values=fv)


def main(args):
    from electra_tf.serving.export import export_saved_model  # noqa: PLC0415 (after flags)

    target = export_saved_model(args.model_dir, args.output, args.version, args.vocab_file,
                                args.top_k)
    print(f"wrote {target}")


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
