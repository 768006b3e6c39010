"""Converts between original TF1 ELECTRA checkpoints and electra_tf model directories.

    python -m electra_tf.convert_checkpoint --from-original CKPT_PREFIX [--config JSON] --output DIR
    python -m electra_tf.convert_checkpoint --to-original DIR --output CKPT_PREFIX
"""

from absl import flags

from electra_common import cli


def define_flags(fv):
    flags.DEFINE_string("from-original", None, "Original checkpoint prefix (or its directory).",
                        flag_values=fv)
    flags.DEFINE_string("to-original", None, "electra_tf model directory to write back.",
                        flag_values=fv)
    flags.DEFINE_string("config", None, "Hyperparameters as JSON or a .json path (as "
                        "--hparams of run_pretraining); inferred from the shapes if omitted, "
                        "with a warning giving the head count assumed (hidden_size // 64) and "
                        "the --config that sets it.", flag_values=fv)
    flags.DEFINE_string("output", None, "Output directory (--from-original) or checkpoint "
                        "prefix (--to-original). Must not exist yet.", flag_values=fv,
                        required=True)


def main(args):
    if (args.from_original is None) == (args.to_original is None):
        raise cli.UsageError("give exactly one of --from-original or --to-original")
    if args.to_original is not None and args.config:
        raise cli.UsageError("--config applies to --from-original only; the model directory "
                             "holds its own config.json")
    from electra_tf import checkpoints  # noqa: PLC0415 (after the flags)

    if args.to_original is not None:
        print(f"wrote {checkpoints.convert_to_original(args.to_original, args.output)}")
        return
    config = checkpoints.config_for_dir(args.output, args.config) if args.config else None
    loaded = checkpoints.convert_from_original(args.from_original, args.output, config)
    print(f"read {checkpoints.resolve_checkpoint(args.from_original)}: {loaded.summary()}")
    print(f"wrote {args.output}")


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
