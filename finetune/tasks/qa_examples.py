"""QA examples: one question on a context split into whitespace-separated words, read from
a SQuAD paragraph or an MRQA line as the original (`read_squad_examples`).

Training questions whose answer cannot be recovered from the context (the offset does not
match the text, or the answer runs past the end) are skipped and counted, as the original
logged them; a missing field, a missing or repeated question id and a non-integer answer
start are errors naming the file and the question.
"""

import dataclasses


def is_whitespace(c):
    """The original's doc-token separators: space, \\t, \\r, \\n and U+202F."""
    return c in " \t\r\n\u202f"


def split_doc(text):
    """Splits a context on whitespace.

    Returns:
        (doc_tokens, char_to_word_offset): the words, and for every character of `text`
        the index of the word it belongs to (a space maps to the previous word; −1 before
        the first word).
    """
    doc_tokens, char_to_word_offset = [], []
    prev_is_whitespace = True
    for c in text:
        if is_whitespace(c):
            prev_is_whitespace = True
        else:
            if prev_is_whitespace:
                doc_tokens.append(c)
            else:
                doc_tokens[-1] += c
            prev_is_whitespace = False
        char_to_word_offset.append(len(doc_tokens) - 1)
    return doc_tokens, char_to_word_offset


@dataclasses.dataclass
class QAExample:
    """One question on one context.

    Args:
        eid: the example's index in its split (windows are keyed by 1000·eid + window).
        task_name: the task.
        qas_id: the SQuAD question id ("id"), None for MRQA.
        question_text: the question.
        doc_tokens: the context's whitespace-separated words.
        orig_answer_text: the training answer (the first one); "" if impossible.
        start_position, end_position: its first and last doc-token index (−1 if impossible).
        is_impossible: SQuAD 2.0 training questions without an answer.
        qid: the MRQA question id ("qid"), None for SQuAD.
        answers: every gold answer text (for scoring; empty for an unanswerable question).
    """

    eid: int
    task_name: str
    qas_id: str | None
    question_text: str
    doc_tokens: list
    orig_answer_text: str | None = None
    start_position: int | None = None
    end_position: int | None = None
    is_impossible: bool = False
    qid: str | None = None
    answers: list = dataclasses.field(default_factory=list)


def add_paragraph(examples, paragraph, task_name, v2, split, where, seen_ids=None,
                  id_key="id"):
    """Appends the questions on one context as `QAExample`s (eid = index in
    `examples`).

    Args:
        examples: the list to extend.
        paragraph: {"context": str, "qas": [...]} (SQuAD paragraph or MRQA line).
        task_name: the task the examples belong to.
        v2: SQuAD 2.0: training questions carry `is_impossible`.
        split: answers are checked (and `is_impossible` read) for "train" only.
        where: the file and the paragraph's place in it, for error messages.
        seen_ids: {question id: its place} of the file so far, updated (None: check
            this paragraph's ids only).
        id_key: the field that identifies a question: "id" (SQuAD) or "qid" (MRQA).
    Returns:
        How many training questions were skipped because their answer cannot be
        recovered from the context.
    Raises:
        ValueError: a question without an id, or with the id of an earlier question
            (predictions are keyed by it).
    """
    context = json_field(paragraph, "context", where)
    doc_tokens, char_to_word_offset = split_doc(context)
    failures, seen_ids = 0, {} if seen_ids is None else seen_ids
    for k, qa in enumerate(json_field(paragraph, "qas", where)):
        where_q = f"{where}, question {k + 1}"
        question_id = qa.get(id_key) if isinstance(qa, dict) else None
        if question_id is None or question_id == "":
            raise ValueError(f"{where_q}: no question id (field {id_key!r}); predictions "
                             "are keyed by it")
        where_q += f" ({id_key} {question_id!r})"
        if question_id in seen_ids:
            raise ValueError(f"{where_q}: the id of an earlier question "
                             f"({seen_ids[question_id]}); question ids must be unique")
        seen_ids[question_id] = where_q
        qas_id, qid = qa.get("id"), qa.get("qid")
        answers = qa.get("answers", [])
        example = QAExample(
            len(examples), task_name, qas_id, json_field(qa, "question", where_q),
            doc_tokens, qid=qid,
            answers=[a if isinstance(a, str) else json_field(a, "text", where_q)
                     for a in answers])
        if split == "train":
            if v2:
                example.is_impossible = bool(json_field(qa, "is_impossible", where_q))
            if example.is_impossible:
                example.orig_answer_text, example.start_position = "", -1
                example.end_position = -1
            elif not set_answer(example, qa, char_to_word_offset, where_q):
                failures += 1
                continue
        examples.append(example)
    return failures


def set_answer(example, qa, char_to_word_offset, where):
    """The training answer's doc-token span; False if it cannot be recovered."""
    if "detected_answers" in qa:  # MRQA
        answer = first_answer(qa["detected_answers"], where, "detected_answers")
        offset = json_field(answer, "char_spans", where)[0][0]
    else:  # SQuAD
        answer = first_answer(qa.get("answers"), where, "answers")
        offset = json_field(answer, "answer_start", where)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise ValueError(f"{where}: the answer's start must be an integer character offset, "
                         f"got {offset!r}")
    text = json_field(answer, "text", where)
    end = offset + len(text) - 1
    if not 0 <= offset <= end < len(char_to_word_offset):
        return False  # "End position is out of document!"
    start_position, end_position = char_to_word_offset[offset], char_to_word_offset[end]
    actual = " ".join(example.doc_tokens[start_position:end_position + 1]).lower()
    if start_position < 0 or " ".join(text.split()).lower() not in actual:
        return False  # "Could not find answer"
    example.orig_answer_text = text
    example.start_position, example.end_position = start_position, end_position
    return True


def squad_dataset(examples):
    """The gold answers of `examples` as a SQuAD JSON "data" list, for the scorers."""
    return [{"paragraphs": [{"qas": [
        {"id": e.qas_id, "answers": [{"text": t} for t in e.answers]} for e in examples]}]}]


def json_field(entry, key, where):
    """`entry[key]`; an error naming `where` if `entry` is not an object with that key."""
    if not isinstance(entry, dict) or key not in entry:
        raise ValueError(f"{where}: expected a field {key!r}")
    return entry[key]


def first_answer(answers, where, key):
    """The first training answer; a question with none (and not impossible) is an error."""
    if not answers:
        raise ValueError(f"{where}: a training question has no {key} and is not marked "
                         "is_impossible")
    return answers[0]
