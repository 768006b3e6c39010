"""QA decoding on hand-built windows and logits: drop rules, best window, n-best, null
odds, `get_final_text`; and the task's predictions, files and test-set path."""

import json

import numpy as np
import pytest

from finetune.config import FinetuningConfig
from finetune.qa import decoding
from finetune.tasks import qa
from finetune.tasks.qa_examples import QAExample
from finetune.tasks.qa_windows import QAWindow
from pretrain_data.tokenization import FullTokenizer
from tests.conftest import FIXTURES

INV_VOCAB = dict(enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "where", "the", "cat", "sat",
                            "on", "m", "##at", "."]))
ID = {t: i for i, t in INV_VOCAB.items()}
# "The cat sat on the mat." = pieces the cat sat on the m ##at . (word of each piece below),
# in two windows over the pieces (0, 5) and (3, 5) after "[CLS] where [SEP]".
DOC = ["The", "cat", "sat", "on", "the", "mat."]
PIECES = ["the", "cat", "sat", "on", "the", "m", "##at", "."]
PIECE_WORD = [0, 1, 2, 3, 4, 5, 5, 5]


def window(eid, start, length, max_context, example_index=0):
    """A `QAWindow` over PIECES[start:start + length]; `max_context`: its doc flags."""
    prefix = ["[CLS]", "where", "[SEP]"]
    return QAWindow(
        eid=eid, example_index=example_index, doc_span_index=eid % 1000,
        input_ids=[ID[t] for t in prefix + PIECES[start:start + length] + ["[SEP]"]],
        segment_ids=[0] * 3 + [1] * (length + 1),
        token_to_orig=[-1] * 3 + PIECE_WORD[start:start + length] + [-1],
        token_is_max_context=[False] * 3 + max_context + [False])


# Max context by the rule: pieces 0-3 in the first window, 4-7 in the second.
WINDOWS = [window(0, 0, 5, [True] * 4 + [False]), window(1, 3, 5, [False] + [True] * 4)]


def config(**kwargs):
    kwargs.setdefault("task_names", ["squad"])
    return FinetuningConfig("m", kwargs.pop("data_dir", "/nonexistent"), **kwargs)


def joint(start_index, start_lp, end_index, end_lp, answerable=0.0, eid=0):
    """One record's joint-mode outputs (beam = len(start_index))."""
    return {"start_top_index": np.array(start_index, np.int32),
            "start_top_log_probs": np.array(start_lp, np.float32),
            "end_top_index": np.array(end_index, np.int32),
            "end_top_log_probs": np.array(end_lp, np.float32),
            "answerable_logit": np.float32(answerable), "eid": eid}


def stack(records):
    return {k: np.stack([np.asarray(r[k]) for r in records]) for k in records[0]}


def test_drop_rules_and_max_answer_length():
    # Window 1: 0 [CLS] 1 where 2 [SEP] 3 on 4 the 5 m 6 ##at 7 . 8 [SEP]; piece 3 ("on",
    # position 3) is not max context here.
    w = WINDOWS[1]
    result = joint([5, 0, 3, 1, 12],
                   [-1.0, -2.0, -3.0, -4.0, -5.0],
                   [[6, 4, 8, 7, 15],  # ok, end < start, [SEP], ok (length 3), past tokens
                    [0, 4, 5, 6, 7],  # start [CLS]
                    [3, 4, 5, 6, 7],  # start not max context
                    [4, 5, 6, 7, 4],  # start in the question
                    [4, 5, 6, 7, 8]],  # start past the tokens
                   np.arange(-25, 0, dtype=np.float32).reshape(5, 5) / 10)
    starts, ends, start_lp, end_lp = decoding.window_candidates(
        w, result, config(max_answer_length=3))
    assert (starts.tolist(), ends.tolist()) == ([5, 5], [6, 7])
    assert start_lp.tolist() == [-1.0, -1.0] and end_lp.tolist() == pytest.approx([-2.5, -2.2])
    starts, ends, _, _ = decoding.window_candidates(w, result, config(max_answer_length=2))
    assert (starts.tolist(), ends.tolist()) == ([5], [6])


def test_non_joint_n_best_of_raw_logits():
    w = WINDOWS[1]
    start_logits = np.array([9, 0, 0, 1, 5, 7, 2, 0, 0, 0], np.float32)
    end_logits = np.array([9, 0, 0, 0, 1, 2, 6, 4, 3, 0], np.float32)
    assert decoding.best_indexes(start_logits, 3).tolist() == [0, 5, 4]
    starts, ends, s, e = decoding.window_candidates(
        w, {"start_logits": start_logits, "end_logits": end_logits},
        config(joint_prediction=False, n_best_size=3))
    # starts (0, 5, 4) × ends (0, 6, 7): [CLS] dropped, 5-6, 5-7, 4-6, 4-7.
    assert list(zip(starts.tolist(), ends.tolist())) == [(5, 6), (5, 7), (4, 6), (4, 7)]
    assert (s + e).tolist() == [13.0, 11.0, 11.0, 9.0]


def test_get_final_text():
    assert decoding.get_final_text("steve smith", "Steve Smith's", "steve smith ' s") == \
        "Steve Smith"
    assert decoding.get_final_text("cafe", "(Café),", "( cafe ) ,") == "Café"
    # Not found, or accent stripping changed the length: the whole original span.
    assert decoding.get_final_text("dog", "(Café),", "( cafe ) ,") == "(Café),"
    assert decoding.get_final_text("cafe", "Cafe\u0301", "cafe") == "Cafe\u0301"
    assert decoding.wordpiece_text(["m", "##at", ".", "##"]) == "mat ."
    words = decoding.basic_texts(["(Café),", "Cafe\u0301", "北京", "\x00"], True)
    assert words == {"(Café),": "( cafe ) ,", "Cafe\u0301": "cafe", "北京": "北 京",
                     "\x00": ""}
    assert decoding.basic_texts(["Café"], False) == {"Café": "Café"}


def example(eid=0, qas_id="q"):
    return QAExample(eid, "squad", qas_id, "where", DOC)


def test_best_window_n_best_and_null_odds():
    outputs = stack([
        # window 0: "cat" (lp −1.5) and "cat sat" (−2.0)
        joint([4, 0], [-1.0, -0.1], [[4, 5], [0, 0]], [[-0.5, -1.0], [0.0, 0.0]], 1.0, 0),
        # window 1: "mat" (−0.3) beats window 0; "mat." (−0.5); "the" (−3.0)
        joint([5, 4], [-0.2, -1.0], [[6, 7], [4, 3]], [[-0.1, -0.3], [-2.0, -0.1]], -3.0, 1),
    ])
    c = config()
    prediction, = decoding.decode([example()], WINDOWS, outputs, c, True, INV_VOCAB)
    assert [t for t, _, _ in prediction.nbest] == ["mat", "mat.", "cat", "cat sat", "the"]
    assert prediction.text == "mat" and prediction.null_odds == -3.0  # min over windows
    # Records in any order, matched by eid; n_best_size keeps the best distinct texts.
    reversed_outputs = {k: v[::-1] for k, v in outputs.items()}
    prediction, = decoding.decode([example()], WINDOWS, reversed_outputs,
                                  config(n_best_size=2), False, INV_VOCAB)
    assert [t for t, _, _ in prediction.nbest] == ["mat", "mat."]
    assert prediction.null_odds is None
    # A shorter max_answer_length drops the two-piece "mat" and three-piece "mat.".
    prediction, = decoding.decode([example()], WINDOWS, outputs, config(max_answer_length=1),
                                  True, INV_VOCAB)
    assert prediction.text == "cat"


def test_null_odds_without_classifier():
    c = config(answerable_classifier=False, joint_prediction=False)
    logits = [np.full(10, -10.0, np.float32) for _ in range(4)]
    logits[0][[0, 4]] = [1.0, 2.0]  # window 0 start: [CLS] 1, "cat" 2
    logits[1][[0, 4]] = [0.5, 0.0]  # window 0 end: [CLS] 0.5, "cat" 0
    logits[2][0], logits[3][0] = -1.0, -1.0  # window 1: [CLS] −1 + −1, nothing else
    outputs = {"start_logits": np.stack(logits[0::2]), "end_logits": np.stack(logits[1::2]),
               "eid": np.array([0, 1])}
    prediction, = decoding.decode([example()], WINDOWS, outputs, c, True, INV_VOCAB)
    # null = min(1 + 0.5, −1 + −1) = −2; odds = null − best non-null (2 + 0) = −4.
    assert prediction.text == "cat" and prediction.null_odds == pytest.approx(-4.0)


def test_empty_fallback_and_duplicate_texts():
    # Every candidate dropped: "empty", zero scores.
    outputs = stack([joint([0], [0.0], [[0]], [[0.0]], 2.0, 0),
                     joint([2], [0.0], [[2]], [[0.0]], 5.0, 1)])
    prediction, = decoding.decode([example()], WINDOWS, outputs, config(), True, INV_VOCAB)
    assert (prediction.text, prediction.nbest, prediction.null_odds) == (
        "empty", [("empty", 0.0, 0.0)], 2.0)
    # Two spans whose pieces cannot be found fall back to the same word: kept once.
    unk = window(0, 5, 3, [True] * 3)
    unk.input_ids[3] = ID["[UNK]"]
    outputs = stack([joint([3, 4], [-1.0, -1.0], [[3, 4], [4, 5]], [[-1.0, -2.0], [-5, -6]])])
    prediction, = decoding.decode([example()], [unk], outputs, config(), False, INV_VOCAB)
    assert [t for t, _, _ in prediction.nbest] == ["mat.", "at", "at."]
    assert decoding.decode([example()], [], {"eid": np.zeros(0)}, config(), True,
                           INV_VOCAB)[0].null_odds == decoding.NO_WINDOW_NULL_SCORE


def test_missing_output_is_an_error():
    with pytest.raises(ValueError, match="no head output for 1 record.*eid 1"):
        decoding.decode([example()], WINDOWS, {"eid": np.array([0])}, config(), True,
                        INV_VOCAB)


# ------------------------------------------------------------------ the task's path


@pytest.fixture(scope="module")
def tokenizer():
    return FullTokenizer(str(FIXTURES / "vocab_tiny.txt"))


def gold_outputs(task, examples, spans):
    """Fake joint-mode outputs whose best candidate in every window is the given span of
    doc words (None: a dropped candidate), with answerable logit = the span's odds."""
    records = []
    for w in task.windows(examples, is_training=False):
        words, odds = spans[w.example_index]
        positions = [i for i, o in enumerate(w.token_to_orig)
                     if words and words[0] <= o <= words[1] and w.token_is_max_context[i]]
        start, end = (positions[0], positions[-1]) if positions else (0, 0)
        records.append(joint([start], [0.0], [[end]], [[0.0]], odds, w.eid))
    return stack(records)


def test_score_writes_files_and_v2_metrics(tmp_path, tokenizer):
    task = qa.SQuAD(config(data_dir=tmp_path), tokenizer)
    examples = [QAExample(0, "squad", "a", "who", "the of and in".split(),
                             answers=["and in", "in"]),
                QAExample(1, "squad", "b", "who", "to was he".split(), answers=[]),
                QAExample(2, "squad", "c", "who", "is as for".split(), answers=["is"])]
    # a: right, answerable; b: no answer (odds −1 > −2.75); c: "as", wrong, answerable.
    outputs = gold_outputs(task, examples, [((2, 3), -5.0), ((0, 0), -1.0), ((1, 1), -3.0)])
    results = task.score(examples, outputs)
    assert results["exact"] == pytest.approx(200 / 3) and results["total"] == 3
    assert results["HasAns_exact"] == 50.0 and results["NoAns_exact"] == 100.0
    c = task.config
    assert json.loads(open(c.qa_preds_file("squad")).read()) == {"a": "and in", "b": "to",
                                                                  "c": "as"}
    assert json.loads(open(c.qa_na_file("squad")).read()) == {"a": -5.0, "b": -1.0, "c": -3.0}
    assert json.loads(open(c.qa_eval_file("squad")).read()) == results


def test_v1_and_mrqa_scores(tmp_path, tokenizer):
    examples = [QAExample(0, "x", "a", "who", "the of and".split(), qid="m0",
                          answers=["of"]),
                QAExample(1, "x", "b", "who", "in to".split(), qid="m1", answers=["in"])]
    spans = [((1, 1), 0.0), ((0, 1), 0.0)]  # "of" (right), "in to" (F1 2/3)
    for cls, key in ((qa.SQuADv1, "a"), (qa.NewsQA, "m0")):
        task = cls(config(data_dir=tmp_path, task_names=["squadv1", "newsqa"]), tokenizer)
        results = task.score(examples, gold_outputs(task, examples, spans))
        assert results == pytest.approx({"exact_match": 50.0, "f1": 100 * (1 + 2 / 3) / 2})
        assert json.loads(open(task.config.qa_preds_file(task.name)).read())[key] == "of"
        assert not task.v2 and task.predict_answers(examples, gold_outputs(
            task, examples, spans))[1] is None


def test_squad_v2_test_predictions_pair_with_test_examples(tmp_path, tokenizer):
    """The test-set path decodes test outputs against the *test* examples."""
    data = tmp_path / "finetuning_data" / "squad"
    data.mkdir(parents=True)
    for split, qid, context in (("dev", "dev-q", "the of"), ("test", "test-q", "and in to")):
        (data / f"{split}.json").write_text(json.dumps({"data": [{"paragraphs": [{
            "context": context, "qas": [{"id": qid, "question": "who", "answers": []}]}]}]}))
    task = qa.SQuAD(config(data_dir=tmp_path), tokenizer)
    test = task.get_examples("test")
    outputs = gold_outputs(task, test, [((1, 2), -4.0)])
    answers, null_odds = task.predict_answers(test, outputs)
    assert (answers, null_odds) == ({"test-q": "in to"}, {"test-q": -4.0})
    assert task.get_test_splits() == ["test"]
