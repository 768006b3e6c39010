"""Fine-tunes and evaluates ELECTRA on GLUE, chunking and QA, with the original command line.

    python -m finetune.run_finetuning --data-dir D --model-name M [--hparams JSON]
    python -m finetune.run_finetuning --list-hparams [--hparams JSON]

Data from D/finetuning_data/<task>/ (or tensorflow-datasets: "data_source": "tfds"),
vocabulary D/models/M/vocab.txt or D/vocab.txt, pretrained encoder and its architecture
from D/models/M (one of our model directories, or an original TF1 checkpoint). For each
trial: train on "train" (a trial already trained is evaluated again, not retrained), score
"dev", record the metrics with the trial's step and time and the hparams in
D/models/M/results/<tasks>_results.{json,txt}, TensorBoard events and learning_curves.png
in the trial directory, and with `write_test_outputs` the test-set predictions as JSON and
as ready-to-submit GLUE TSV files (docs/finetuning.md).
"""

from electra_common import cli
from electra_tf import hparams


def define_flags(fv):
    hparams.define_flags(fv, "The name of the pretrained model.")


def main(args):
    from finetune.config import FinetuningConfig  # noqa: PLC0415 (after the flags)

    config = FinetuningConfig.from_flags(args)  # a misspelt hparam stops here, before TF
    from finetune.trials import run_finetuning  # noqa: PLC0415

    run_finetuning(config)


def list_hparams(args):
    from finetune.config import FinetuningConfig  # noqa: PLC0415 (after the flags)

    return FinetuningConfig.describe_flags(args)


def run():
    cli.run(main, define_flags, __doc__, list_hparams=list_hparams)


if __name__ == "__main__":
    run()
