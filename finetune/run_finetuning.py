"""Fine-tunes and evaluates ELECTRA on GLUE, chunking and QA, with the original command line.

    python -m finetune.run_finetuning --data-dir D --model-name M [--hparams JSON]

Data from D/finetuning_data/<task>/, vocabulary D/models/M/vocab.txt or D/vocab.txt,
pretrained encoder from D/models/M (one of our model directories, or an original TF1
checkpoint). For each trial: train on "train", score "dev", append the metrics to
D/models/M/results/<tasks>_results.{json,txt}, and with `write_test_outputs` write the
test-set predictions as JSON and as ready-to-submit GLUE TSV files (docs/finetuning.md).
"""

from electra_common import cli
from electra_tf import hparams


def define_flags(fv):
    hparams.define_flags(fv, "The name of the pretrained model.")


def main(args):
    from finetune.config import FinetuningConfig  # noqa: PLC0415 (after the flags)
    from finetune.trials import run_finetuning  # noqa: PLC0415

    run_finetuning(FinetuningConfig.from_flags(args))


def run():
    cli.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
