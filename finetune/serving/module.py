"""The `ServingModule` of a fine-tuned model directory: one endpoint per task.

Every task gets `<task>_text` (raw text), `<task>_examples` (the same on serialized
tf.Examples) and `<task>_ids` (int32 features); classification tasks also get
`<task>_classify` and regression tasks `<task>_regress` (TF Serving's Classify / Regress
APIs). `serving_default` is the first task's `<task>_text`. What each task type's text signature reads and returns:

- classification: `text` (CoLA, SST) or `text_a`, `text_b` → `logits`, `probabilities`,
  `label_id`, `label`;
- regression: `text_a`, `text_b` → `prediction`, `score`;
- tagging: `text`, whitespace-separated words → per token, and per word (`words`,
  `word_label`, ...);
- qa: `question`, `context` → the head's outputs, the decoded span and `answer_text`.
The outputs are listed in `task_outputs` and `text`. The text signatures also return the
features and their `tokens`.
"""

from electra_tf.serving.endpoints import (
    Endpoint, TextSignature, id_ranges, pair_text, single_text)
from electra_tf.serving.module import ServingModule
from electra_tf.serving.text_encoder import TextEncoder
from finetune import model_dir as model_dir_lib
from finetune.serving.task_outputs import (
    classification_outputs, classify_api, qa_outputs, regress_api, regression_outputs,
    tagging_outputs)
from finetune.serving.text import QAReader, WordTagger

# GLUE tasks whose examples have one text; every other GLUE task reads a pair.
SINGLE_SENTENCE_TASKS = ("cola", "sst")
# The warm-up request of the tagging and QA text signatures (one list per input).
WORDS_EXAMPLE = (["The quick brown fox jumps over the lazy dog ."],)
QA_EXAMPLE = (["Who jumps over the dog?"], ["The quick brown fox jumps over the lazy dog."])


def build_serving_module(model_dir, vocab_file=None):
    """The `ServingModule` of a fine-tuned model directory (the `electra_tf.serving` entry
    point "finetuned", named by the directory's `serving.json`).

    Args:
        model_dir: a directory written by `finetune.model_dir.save`.
        vocab_file: default: the directory's own `vocab.txt`.
    Returns:
        A `ServingModule` with the signatures of each task (above), in the config's task
        order.
    Raises:
        ValueError: the vocabulary does not have the model's `vocab_size` tokens.
    """
    finetuned = model_dir_lib.load(model_dir)
    config = finetuned.config
    vocab_file = vocab_file or finetuned.vocab_file
    text_encoder = TextEncoder(vocab_file, config.max_seq_length, config.do_lower_case,
                               vocab_size=config.vocab_size)
    return ServingModule(text_encoder, [task_endpoint(task, finetuned.model, text_encoder, config)
                                        for task in finetuned.tasks])


def task_endpoint(task, model, text_encoder, config):
    """The endpoint of one task of a fine-tuned model.

    Args:
        task: a `finetune.tasks` task (`name`, `task_type`, `label_list` / `label_mapping`,
            `min_value` / `max_value` for regression).
        model: the `finetune.model.FinetuningModel` (`encoder`, `heads[task.name]`).
        text_encoder: the export's `TextEncoder`.
        config: the `FinetuningConfig` (QA: `max_query_length`, decoding fields).
    Returns:
        An `Endpoint` named after the task, with one text signature, `<task>_text`, and
        the Classify (classification) or Regress (regression) outputs.
    """
    head, encoder = model.heads[task.name], model.encoder
    classify = regress = None
    if task.task_type == "classification":
        read = single_text if task.name in SINGLE_SENTENCE_TASKS else pair_text
        outputs = classification_outputs(encoder, head, task.label_list)
        text = read(text_encoder, suffix="text")
        classify = classify_api(task.label_list)
    elif task.task_type == "regression":
        outputs = regression_outputs(encoder, head, task.min_value, task.max_value)
        text = pair_text(text_encoder, suffix="text")
        regress = regress_api
    elif task.task_type == "tagging":
        tags = model_dir_lib.label_names(task)
        tagger = WordTagger(text_encoder, tags)
        outputs = tagging_outputs(encoder, head, tags)
        text = TextSignature("text", ("text",), tagger.encode, WORDS_EXAMPLE, tagger.finish)
    elif task.task_type == "qa":
        reader = QAReader(text_encoder, config.max_query_length)
        outputs = qa_outputs(encoder, head, config, task.v2)
        text = TextSignature("text", ("question", "context"), reader.encode, QA_EXAMPLE,
                             reader.finish)
    else:
        raise ValueError(f"task {task.name}: cannot serve task_type {task.task_type!r} "
                         "(expected classification, regression, tagging or qa)")
    return Endpoint(task.name, outputs, [text], model, *id_ranges(encoder), classify, regress)
