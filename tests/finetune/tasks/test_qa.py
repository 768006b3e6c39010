"""QA tasks: reading SQuAD / MRQA / tfds, windows, max context, labels, answer recovery."""

import json
import random

import numpy as np
import pytest

from finetune import tasks
from finetune.config import FinetuningConfig
from finetune.qa import decoding
from finetune.tasks import qa, qa_examples, qa_windows
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES

# Single-piece words of vocab_tiny.txt.
WORDS = "the of and in to was he is as for".split()
CJK = "北京是中国的首都"


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """vocab_tiny.txt plus CJK characters and ß (so generated texts have no [UNK])."""
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    extra = list(CJK) + ["ß", "##ß"]
    path.write_text((FIXTURES / "vocab_tiny.txt").read_text() + "\n".join(extra) + "\n")
    return FullTokenizer(str(path))


def make(tokenizer, name, data_dir="/nonexistent", **kwargs):
    config = FinetuningConfig("m", str(data_dir), task_names=[name], **kwargs)
    task = tasks.get_task(config, name, tokenizer)
    assert isinstance(task, qa.QATask) and task.name == name and task.task_type == "qa"
    return task


def squad_json(paragraphs):
    return {"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}


def write(data_dir, task, filename, text):
    path = data_dir / "finetuning_data" / task / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def qa_entry(qid, question, context, answer, key="id", is_impossible=None, offset=None):
    entry = {key: qid, "question": question,
             "answers": [{"text": answer, "answer_start":
                          context.index(answer) if offset is None else offset}]}
    if is_impossible is not None:
        entry["is_impossible"] = is_impossible
    return entry


def test_split_doc():
    tokens, offsets = qa_examples.split_doc(" The  cat\tsat\u202fon\n\u00a0mat.")
    assert tokens == ["The", "cat", "sat", "on", "\u00a0mat."]  # NBSP is not a separator
    assert offsets == [-1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 4, 4, 4]


def test_doc_spans_and_max_context():
    spans = qa_windows.doc_spans(10, 5, 2)
    assert spans == [(0, 5), (2, 5), (4, 5), (6, 4)]
    # By hand: score min(left, right) + 0.01·length, first window on ties (p3, p5).
    assert qa_windows.max_context_spans(spans, 10).tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    assert qa_windows.doc_spans(10, 4, 128) == [(0, 4), (4, 4), (8, 2)]  # stride > window
    assert qa_windows.doc_spans(3, 5, 2) == [(0, 3)] and qa_windows.doc_spans(0, 5, 2) == []


def test_max_context_matches_the_per_token_rule():
    """Random windowings against the original's per-token loop, restated."""
    rng = random.Random(1)
    for _ in range(200):
        n, window, stride = rng.randint(1, 60), rng.randint(1, 20), rng.randint(1, 25)
        spans = qa_windows.doc_spans(n, window, stride)
        assert spans[0][0] == 0 and sum(spans[-1]) == n
        expected = []
        for position in range(n):
            best_score, best = None, None
            for index, (start, length) in enumerate(spans):
                if start <= position <= start + length - 1:
                    score = min(position - start, start + length - 1 - position) + 0.01 * length
                    if best_score is None or score > best_score:
                        best_score, best = score, index
            expected.append(best)
        assert qa_windows.max_context_spans(spans, n).tolist() == expected


def test_windows_layout_labels_and_eids(tokenizer):
    task = make(tokenizer, "squad", max_seq_length=9, doc_stride=2)
    context = " ".join(WORDS)
    examples = []
    for i in range(2):
        task.add_paragraph(examples, {"context": context, "qas": [
            qa_entry(f"q{i}", "where", context, "he is", is_impossible=False)]}, "train", "t")
    windows = task.windows(examples, is_training=True)
    assert [w.eid for w in windows] == [0, 1, 2, 3, 1000, 1001, 1002, 1003]
    first = windows[:4]
    # [CLS] where [SEP] = 3 tokens; spans (0,5) (2,5) (4,5) (6,4) of the 10 words.
    assert [w.token_to_orig[3:-1] for w in first] == [
        [0, 1, 2, 3, 4], [2, 3, 4, 5, 6], [4, 5, 6, 7, 8], [6, 7, 8, 9]]
    assert [w.token_is_max_context[3:-1] for w in first] == [
        [True] * 4 + [False], [False, False, True, True, False],
        [False, False, True, True, False], [False, False, True, True]]
    ids = tokenizer.convert_tokens_to_ids(
        ["[CLS]", "where", "[SEP]", "and", "in", "to", "was", "he", "[SEP]"])
    assert first[1].input_ids == ids and first[1].segment_ids == [0] * 3 + [1] * 6
    # "he is" = words 6, 7: inside windows 2 and 3 only.
    assert [(w.start_position, w.end_position) for w in first] == [(0, 0), (0, 0), (5, 6),
                                                                   (3, 4)]
    features = task.featurize(examples, is_training=True)
    assert features["input_ids"].shape == (8, 9) and features["input_ids"].dtype == np.int32
    assert features["input_ids"][1].tolist() == ids
    assert features["input_mask"][7].tolist() == [1] * 8 + [0]
    assert features["squad_start_positions"].tolist() == [0, 0, 5, 3] * 2
    assert features["squad_end_positions"].tolist() == [0, 0, 6, 4] * 2
    assert features["squad_eid"].tolist() == [0, 1, 2, 3, 1000, 1001, 1002, 1003]
    assert features["task_id"].tolist() == [0] * 8
    assert set(task.feature_specs()) == {k for k in features if k.startswith("squad_")}
    # Evaluation records carry no labels.
    assert not task.featurize(examples, is_training=False)["squad_start_positions"].any()


def test_query_truncation_and_no_room(tokenizer):
    task = make(tokenizer, "squad", max_seq_length=12, max_query_length=2)
    examples = [qa_examples.QAExample(0, "squad", "q", "the of and in to", ["was", "he"])]
    window, = task.windows(examples, is_training=False)
    assert window.input_ids[:4] == tokenizer.convert_tokens_to_ids(
        ["[CLS]", "the", "of", "[SEP]"])
    task = make(tokenizer, "squad", max_seq_length=5, max_query_length=64)
    with pytest.raises(ValueError, match="example q: max_seq_length 5 leaves no room"):
        task.windows(examples, is_training=False)


def test_impossible_and_answer_outside_window(tokenizer):
    task = make(tokenizer, "squad", max_seq_length=9, doc_stride=2)
    context = " ".join(WORDS)
    paragraph = {"context": context, "qas": [
        {"id": "no", "question": "where", "is_impossible": True, "answers": []},
        qa_entry("yes", "where", context, "the of", is_impossible=False)]}
    examples = []
    assert task.add_paragraph(examples, paragraph, "train", "t") == 0
    assert (examples[0].is_impossible, examples[0].start_position) == (True, -1)
    features = task.featurize(examples, is_training=True)
    assert features["squad_is_impossible"].tolist() == [1] * 4 + [0] * 4
    # Impossible: [CLS]; answerable but not in the window: [CLS], still labelled answerable.
    assert features["squad_start_positions"].tolist() == [0] * 4 + [3, 0, 0, 0]
    assert features["squad_end_positions"].tolist() == [0] * 4 + [4, 0, 0, 0]
    # Dev questions: no answer checks, is_impossible not read, all gold answers kept.
    dev = []
    task.add_paragraph(dev, paragraph, "dev", "t")
    assert [(e.is_impossible, e.answers) for e in dev] == [(False, []), (False, ["the of"])]


SEPARATORS = [" ", "  ", "\t", "\u202f", "\n", " \t\r\n "]
PREFIXES = [[], ["("], ['"']]
CORES = [["Café"], ["naïve"], ["ÉCOLE"], ["Straße"], ["was"], ["He"], ["x9"], ["Über"],
         ["mañana"], ["ISN", "'", "T"], list(CJK[:3]), list(CJK[3:5])]
SUFFIXES = [[], [], [","], ["."], [")"], ["?", "!"]]


def _random_context(rng):
    """Words with accents, CJK, attached punctuation, separated by assorted whitespace.

    Returns:
        The context and the (start, end) characters of its units: the pieces the
        BasicTokenizer splits it into, where an answer may start or end.
    """
    text, units = "", []
    for i in range(rng.randint(3, 25)):
        if i:
            text += rng.choice(SEPARATORS)
        for unit in rng.choice(PREFIXES) + rng.choice(CORES) + rng.choice(SUFFIXES):
            units.append((len(text), len(text) + len(unit)))
            text += unit
    return text, units


def test_gold_answers_map_back_to_their_text(tokenizer):
    """Generated contexts: every training window's labels, through the token and word maps
    and `get_final_text`, give back the answer (whitespace normalised as the original)."""
    rng = random.Random(0)
    task = make(tokenizer, "squadv1", max_seq_length=24, max_query_length=4, doc_stride=5)
    examples, answers = [], []
    for n in range(300):
        context, units = _random_context(rng)
        i = rng.randrange(len(units))
        j = min(len(units) - 1, i + rng.randint(0, 3))
        answer = context[units[i][0]:units[j][1]]
        answers.append(answer)
        assert task.add_paragraph(examples, {"context": context, "qas": [
            qa_entry(f"q{n}", "where", context, answer, offset=units[i][0])]}, "train",
            "t") == 0
    windows = task.windows(examples, is_training=True)
    words = decoding.basic_texts([w for e in examples for w in e.doc_tokens], True)
    recovered = [[] for _ in examples]
    for w in windows:
        if w.start_position:
            example = examples[w.example_index]
            orig = example.doc_tokens[w.token_to_orig[w.start_position]:
                                      w.token_to_orig[w.end_position] + 1]
            pred = decoding.wordpiece_text(tokenizer.convert_ids_to_tokens(
                w.input_ids[w.start_position:w.end_position + 1]))
            recovered[w.example_index].append(decoding.get_final_text(
                pred, " ".join(orig), " ".join(words[o] for o in orig if words[o])))
    for answer, texts in zip(answers, recovered):
        assert texts and set(texts) == {" ".join(answer.split())}, (answer, texts)
    assert sum(len(t) > 1 for t in recovered) > 50  # many answers lie in several windows


def test_bad_answers_are_skipped_and_counted(tmp_path, tokenizer, capsys):
    context = "the of and in to"
    write(tmp_path, "squadv1", "train.json", json.dumps(squad_json([{
        "context": context, "qas": [
            qa_entry("ok", "where", context, "and in"),
            qa_entry("offset", "where", context, "and in", offset=0),  # text mismatch
            qa_entry("past-end", "where", context, "to", offset=len(context) - 1 + 5)]}])))
    examples = make(tokenizer, "squadv1", tmp_path).get_examples("train")
    assert [(e.qas_id, e.eid, e.start_position, e.end_position) for e in examples] == [
        ("ok", 0, 2, 3)]
    assert "1 examples created, 2 training questions skipped" in capsys.readouterr().out
    # Dev reads every question unchecked.
    write(tmp_path, "squadv1", "dev.json", json.dumps(squad_json([{
        "context": context, "qas": [qa_entry("offset", "where", context, "and", offset=0)]}])))
    assert len(make(tokenizer, "squadv1", tmp_path).get_examples("dev")) == 1


def test_malformed_inputs(tmp_path, tokenizer):
    path = write(tmp_path, "squad", "train.json", '{"data": [')
    with pytest.raises(ValueError, match=f"{path}: malformed JSON"):
        make(tokenizer, "squad", tmp_path).get_examples("train")
    write(tmp_path, "squad", "train.json", json.dumps(squad_json([{"context": "a b", "qas": [
        {"id": "q7", "question": "?", "is_impossible": False, "answers": []}]}])))
    with pytest.raises(ValueError, match=r"paragraph 1, question 1 \(id 'q7'\): a training "
                                         "question has no answers"):
        make(tokenizer, "squad", tmp_path).get_examples("train")
    write(tmp_path, "squad", "dev.json", json.dumps(squad_json([{"qas": []}])))
    with pytest.raises(ValueError,
                       match="dev.json: article 1, paragraph 1: expected a field 'context'"):
        make(tokenizer, "squad", tmp_path).get_examples("dev")
    path = write(tmp_path, "newsqa", "dev.jsonl", '{"header": {}}\n{"context": "a", \n')
    with pytest.raises(ValueError, match=f"{path}:2: malformed JSON"):
        make(tokenizer, "newsqa", tmp_path).get_examples("dev")
    with pytest.raises(FileNotFoundError, match="finetuning_data/squad/test.json"):
        make(tokenizer, "squad", tmp_path).get_examples("test")


def mrqa_line(i, context, answer):
    start = context.index(answer)
    return json.dumps({"id": f"c{i}", "context": context, "qas": [
        {"qid": f"m{i}", "question": "who", "answers": [answer, answer.upper()],
         "detected_answers": [{"text": answer, "char_spans": [[start, start + len(answer) - 1]],
                               "token_spans": [[0, 0]]}]}]})


@pytest.mark.parametrize("name", ["newsqa", "naturalqs", "triviaqa", "searchqa"])
def test_mrqa_reader(tmp_path, tokenizer, name):
    lines = [json.dumps({"header": {"dataset": name}})]
    lines += [mrqa_line(i, f"the of and in {i}", "and in") for i in range(15)]
    write(tmp_path, name, "train.jsonl", "\n".join(lines) + "\n")
    examples = make(tokenizer, name, tmp_path).get_examples("train")
    assert len(examples) == 15
    e = examples[3]
    assert (e.qid, e.qas_id, e.eid, e.answers) == ("m3", None, 3, ["and in", "AND IN"])
    assert (e.start_position, e.end_position, e.orig_answer_text) == (2, 3, "and in")
    assert len(make(tokenizer, name, tmp_path, debug=True).get_examples("train")) == 10


def test_squad_debug_file_and_v2_fields(tmp_path, tokenizer):
    context = "the of and in"
    write(tmp_path, "squad", "train-debug.json", json.dumps(squad_json([{
        "context": context, "qas": [qa_entry("a", "who", context, "of", is_impossible=False),
                                    {"id": "b", "question": "who", "is_impossible": True,
                                     "answers": [], "plausible_answers": []}]}])))
    examples = make(tokenizer, "squad", tmp_path, debug=True).get_examples("train")
    assert [(e.qas_id, e.is_impossible, e.orig_answer_text) for e in examples] == [
        ("a", False, "of"), ("b", True, "")]


def _tfds_records(records):
    import tensorflow as tf

    def as_dataset(self, *args, **kwargs):
        datasets = [tf.data.Dataset.from_tensors(r) for r in records]
        for d in datasets[1:]:
            datasets[0] = datasets[0].concatenate(d)
        return datasets[0]
    return as_dataset


def test_tfds_source(tokenizer):
    import tensorflow_datasets as tfds

    context = "the of and in to"
    record = {"id": "x1", "title": "t", "context": context, "question": "where",
              "answers": {"text": ["and in"], "answer_start": [7]}}
    v2 = dict(record, is_impossible=False,
              plausible_answers={"text": ["x"], "answer_start": [0]})
    impossible = dict(v2, id="x2", is_impossible=True,
                      answers={"text": np.zeros(0, str), "answer_start": np.zeros(0, np.int32)})
    with tfds.testing.mock_data(as_dataset_fn=_tfds_records([record])):
        v1_examples = qa.tfds_qa_examples(make(tokenizer, "squadv1"), "train")
    with tfds.testing.mock_data(as_dataset_fn=_tfds_records([v2, impossible])):
        v2_examples = qa.tfds_qa_examples(make(tokenizer, "squad"), "train")
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        dev = qa.tfds_qa_examples(make(tokenizer, "squad"), "dev")
    assert [(e.qas_id, e.start_position, e.end_position, e.answers) for e in v1_examples] == [
        ("x1", 2, 3, ["and in"])]
    assert [(e.qas_id, e.is_impossible, e.start_position) for e in v2_examples] == [
        ("x1", False, 2), ("x2", True, -1)]
    assert len(dev) == 3 and all(isinstance(e.question_text, str) for e in dev)
    with pytest.raises(ValueError, match="splits train and dev, not 'test'"):
        qa.tfds_qa_examples(make(tokenizer, "squad"), "test")
    assert make(tokenizer, "squad").featurize(dev, False)["input_ids"].shape[1] == 512


def test_missing_or_repeated_question_ids_are_errors(tmp_path, tokenizer):
    context = "the of and in"
    paragraphs = [{"context": context, "qas": [qa_entry("a", "who", context, "of")]},
                  {"context": context, "qas": [qa_entry("b", "who", context, "of"),
                                               {"question": "who", "answers": []}]}]
    path = write(tmp_path, "squadv1", "dev.json", json.dumps(squad_json(paragraphs)))
    with pytest.raises(ValueError, match=f"{path}: article 1, paragraph 2, question 2: no "
                                         "question id"):
        make(tokenizer, "squadv1", tmp_path).get_examples("dev")
    paragraphs[1]["qas"][1]["id"] = "a"  # the id of the first paragraph's question
    write(tmp_path, "squadv1", "dev.json", json.dumps(squad_json(paragraphs)))
    with pytest.raises(ValueError, match=r"paragraph 2, question 2 \(id 'a'\): the id of an "
                                         r"earlier question \(.*paragraph 1, question 1"):
        make(tokenizer, "squadv1", tmp_path).get_examples("dev")
    line = json.loads(mrqa_line(0, context, "of"))
    del line["qas"][0]["qid"]
    path = write(tmp_path, "newsqa", "dev.jsonl", '{"header": {}}\n' + json.dumps(line) + "\n")
    with pytest.raises(ValueError,
                       match=rf"{path}:2, question 1: no question id \(field 'qid'\)"):
        make(tokenizer, "newsqa", tmp_path).get_examples("dev")


def test_a_non_integer_answer_start_is_an_error(tmp_path, tokenizer):
    context = "the of and in"
    path = write(tmp_path, "squadv1", "train.json", json.dumps(squad_json([{
        "context": context, "qas": [qa_entry("q1", "who", context, "of", offset="4")]}])))
    with pytest.raises(ValueError, match=f"{path}: article 1, paragraph 1, question 1 "
                                         r"\(id 'q1'\): the answer's start must be an integer "
                                         "character offset, got '4'"):
        make(tokenizer, "squadv1", tmp_path).get_examples("train")
