"""The fine-tuning tasks by name: GLUE classification/regression, chunking and QA.

`Example` (one GLUE or tagging example) and `tfds_examples` (GLUE from tensorflow-datasets)
are re-exported for users; the task classes are in `base`, `glue`, `tagging` and `qa`.
"""

from finetune.tasks.base import Example
from finetune.tasks.glue import MNLI, MRPC, QNLI, QQP, RTE, SST, STS, CoLA
from finetune.tasks.glue import TFDS_GLUE, tfds_examples
from finetune.tasks.tagging import Chunking

# QA tasks live in `finetune.tasks.qa` (imported on first use).
QA_TASKS = {"squad": "SQuAD", "squadv1": "SQuADv1", "newsqa": "NewsQA",
            "naturalqs": "NaturalQuestions", "triviaqa": "TriviaQA", "searchqa": "SearchQA"}

# The tasks `"data_source": "tfds"` can read: GLUE, and SQuAD 2.0 / 1.1 (`qa.tfds_qa_examples`).
TFDS_TASKS = tuple(TFDS_GLUE) + ("squad", "squadv1")

__all__ = ["Example", "QA_TASKS", "TASKS", "TFDS_TASKS", "get_task", "get_tasks",
           "tfds_examples"]

TASKS = {"cola": CoLA, "mrpc": MRPC, "mnli": MNLI, "sst": SST, "rte": RTE, "qnli": QNLI,
         "qqp": QQP, "sts": STS, "chunk": Chunking}


def get_task(config, name, tokenizer):
    """The task object for `name`; an unknown name is a `ValueError` listing the known."""
    if name in QA_TASKS:
        from finetune.tasks import qa  # noqa: PLC0415

        return getattr(qa, QA_TASKS[name])(config, tokenizer)
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; known tasks: "
                         f"{', '.join(sorted(TASKS) + sorted(QA_TASKS))}")
    return TASKS[name](config, tokenizer)


def get_tasks(config, tokenizer):
    """The tasks of `config.task_names`, in order (a feature's task_id indexes this list)."""
    return [get_task(config, name, tokenizer) for name in config.task_names]
