"""QA scoring against worked examples computed by hand from the official scripts' rules."""

import logging
import string

import pytest

from finetune.qa import scoring


def squad_data(*questions):
    """A SQuAD "data" list with one article and one paragraph per (qid, gold texts) pair."""
    return [{"title": "t", "paragraphs": [
        {"context": "c", "qas": [{"id": qid, "question": "q?",
                                  "answers": [{"text": t, "answer_start": 0} for t in golds]}]}
        for qid, golds in questions]}]


@pytest.mark.parametrize("text, expected", [
    # lower → drop punctuation → drop whole-word articles → collapse whitespace
    ("The  Quick, brown FOX!", "quick brown fox"),
    ("an apple a day", "apple day"),
    ("theatre anthem", "theatre anthem"),     # articles only as whole words
    ("The-end", "theend"),                    # "-" goes first, so "the" is no longer a word
    ("the—end", "—end"),                      # "—" is not ASCII punctuation: it stays and
                                              # leaves "the" a whole word, which goes
    ("“Café” ¿qué?", "“café” ¿qué"),          # only "?" is in string.punctuation
    ("x\u00a0\u3000 y\n", "x y"),             # NBSP and ideographic space are whitespace
    ("A.", ""),
])
def test_normalize_answer(text, expected):
    assert scoring.normalize_answer(text) == expected


def test_unicode_punctuation_is_not_removed():
    assert not {"—", "“", "”", "¿"} & set(string.punctuation)
    # "1—2" stays one token, while "1-2" becomes "12": neither matches the gold "1 2".
    assert scoring.exact_match("1—2", "1 2") == 0.0
    assert scoring.f1("1—2", "1 2") == 0.0
    assert scoring.exact_match("1-2", "12") == 1.0


def test_exact_match():
    assert scoring.exact_match("the Eiffel Tower.", "Eiffel tower") == 1.0
    assert scoring.exact_match("Eiffel", "Eiffel Tower") == 0.0
    assert scoring.exact_match("", "The") == 1.0  # both normalise to ""


def test_f1_token_bags_with_repeats():
    # [cat, cat, sat] vs [cat, sat, on, mat]: common = cat×min(2,1) + sat = 2,
    # P = 2/3, R = 2/4, F1 = 2·(1/3)/(7/6) = 4/7.
    assert scoring.f1("the cat cat sat", "a cat sat on the mat") == pytest.approx(4 / 7)
    # [cat, cat, cat] vs [cat, cat, dog]: common = cat×2, P = R = 2/3, F1 = 2/3.
    assert scoring.f1("cat cat cat", "cat cat dog") == pytest.approx(2 / 3)
    assert scoring.f1_v1("cat cat cat", "cat cat dog") == pytest.approx(2 / 3)
    assert scoring.f1("red", "blue") == 0.0


def test_f1_of_empty_answers_v2_vs_v1():
    # v2: if either side has no token, 1 if both have none, else 0.
    assert scoring.f1("", "") == 1.0
    assert scoring.f1("the", "An.") == 1.0
    assert scoring.f1("", "cat") == 0.0
    assert scoring.f1("cat", "") == 0.0
    # v1.1 / MRQA: 0 whenever no token is shared, even empty vs empty.
    assert scoring.f1_v1("", "") == 0.0
    assert scoring.f1_v1("the", "An.") == 0.0


def test_squad_v1_max_over_golds_and_missing_prediction(caplog):
    dataset = squad_data(
        ("q1", ["Denver Broncos", "The Denver Broncos!", "Broncos"]),
        ("q2", ["Santa Clara, California", "Levi's Stadium"]),
        ("q3", ["1966"]))
    predictions = {"q1": "the broncos",                      # "broncos" = gold 3: EM 1, F1 1
                   "q2": "Levi's Stadium in Santa Clara"}    # q3 unanswered: scores 0
    # q2: [levis, stadium, in, santa, clara] vs [santa, clara, california]: 2 shared,
    # P = 2/5, R = 2/3, F1 = (8/15)/(16/15) = 1/2; vs [levis, stadium]: P = 2/5, R = 1,
    # F1 = (4/5)/(7/5) = 4/7. Max: 4/7, EM 0.
    with caplog.at_level(logging.WARNING):
        result = scoring.squad_v1(dataset, predictions)
    assert result == {"exact_match": pytest.approx(100 / 3),
                      "f1": pytest.approx(100 * (1 + 4 / 7) / 3)}   # total 3, q3 counted
    assert "1 of 3 questions are unanswered" in caplog.text and "q3" in caplog.text


def test_squad_v1_uses_v1_f1_for_empty_answers():
    # Gold "the" and prediction "a" both normalise to "": EM 1, but v1.1 F1 0.
    result = scoring.squad_v1(squad_data(("q", ["the"])), {"q": "a"})
    assert result == {"exact_match": 100.0, "f1": 0.0}


def test_squad_v2_without_na_probs():
    dataset = squad_data(
        ("h1", ["Normans", "the Normans"]),
        ("h2", ["in the 10th century", "10th century"]),
        ("h3", ["The."]),        # has an answer, but it normalises to "": gold becomes [""]
        ("n1", []),
        ("n2", []))
    predictions = {
        "h1": "Normans",                  # EM 1, F1 1
        # [10th, and, 11th, centuries] vs [in, 10th, century]: P 1/4, R 1/3, F1 2/7;
        # vs [10th, century]: P 1/4, R 1/2, F1 (1/4)/(3/4) = 1/3. Max 1/3, EM 0.
        "h2": "10th and 11th centuries",
        "h3": "an",                       # "" vs "": EM 1, F1 1 (v2)
        "n1": "",                         # "" vs "": EM 1, F1 1
        "n2": "France"}                   # EM 0, F1 0
    result = scoring.squad_v2(dataset, predictions)
    # No na_probs: every na_prob is 0.0, not > 1.0, so no threshold applies.
    assert list(result) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1",
                            "HasAns_total", "NoAns_exact", "NoAns_f1", "NoAns_total"]
    assert result == {
        "exact": pytest.approx(100 * 3 / 5), "f1": pytest.approx(100 * (10 / 3) / 5),
        "total": 5,
        "HasAns_exact": pytest.approx(100 * 2 / 3),
        "HasAns_f1": pytest.approx(100 * (7 / 3) / 3), "HasAns_total": 3,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2}


def test_squad_v2_drops_golds_that_normalise_to_nothing():
    # "The" normalises to "" and is dropped, so the empty prediction is scored against
    # "Normandy" alone: EM 0, F1 0 (against "The" it would score 1). v1.1 keeps "The".
    dataset = squad_data(("h", ["The", "Normandy"]))
    result = scoring.squad_v2(dataset, {"h": ""})
    assert (result["exact"], result["f1"], result["HasAns_total"]) == (0.0, 0.0, 1)
    assert scoring.squad_v1(dataset, {"h": ""}) == {"exact_match": 100.0, "f1": 0.0}


BEST_THRESH_DATA = squad_data(("a", ["Paris"]), ("c", ["big red barn"]), ("b", []),
                              ("e", ["four"]), ("d", []))
BEST_THRESH_PREDICTIONS = {
    "a": "Paris",            # EM 1, F1 1
    "c": "red barn door",    # [red, barn, door] vs [big, red, barn]: P = R = 2/3, F1 2/3
    "b": "Paris",            # unanswerable but answered: EM 0, F1 0
    "e": "four five six",    # P 1/3, R 1: F1 (2/3)/(4/3) = 1/2, EM 0
    "d": ""}                 # unanswerable, empty: EM 1, F1 1
BEST_THRESH_NA_PROBS = {"a": -3.0, "c": -1.0, "b": 0.5, "e": 1.0, "d": 2.0}


def test_squad_v2_threshold_and_best_threshold_search():
    result = scoring.squad_v2(BEST_THRESH_DATA, BEST_THRESH_PREDICTIONS,
                              BEST_THRESH_NA_PROBS, na_prob_thresh=-2.75)
    # ELECTRA's -2.75: every question but a has na_prob > -2.75, so it counts "no answer":
    # a 1, c 0 (has an answer), b 1, e 0, d 1, for EM and F1 alike.
    # Best thresholds: start from "no answer" everywhere = 2 (b, d), threshold 0.0, then
    # answer in increasing na_prob and keep strict improvements:
    #   EM: a +1 → 3 (best, -3.0); c +0 → 3; b -1 → 2; e +0 → 2; d +0 → 2.
    #   F1: a +1 → 3 (best, -3.0); c +2/3 → 11/3 (best, -1.0); b -1 → 8/3; e +1/2 → 19/6;
    #       d +0 → 19/6.
    assert result == {
        "exact": 60.0, "f1": 60.0, "total": 5,
        "HasAns_exact": pytest.approx(100 / 3), "HasAns_f1": pytest.approx(100 / 3),
        "HasAns_total": 3,
        "NoAns_exact": 100.0, "NoAns_f1": 100.0, "NoAns_total": 2,
        "best_exact": 60.0, "best_exact_thresh": -3.0,
        "best_f1": pytest.approx(100 * (11 / 3) / 5), "best_f1_thresh": -1.0}


def test_squad_v2_at_the_best_threshold_scores_best_f1():
    # Answering where na_prob <= -1.0 (a, c) scores a 1, c 2/3, b 1, e 0, d 1 = 11/3.
    result = scoring.squad_v2(BEST_THRESH_DATA, BEST_THRESH_PREDICTIONS,
                              BEST_THRESH_NA_PROBS, na_prob_thresh=-1.0)
    assert result["f1"] == pytest.approx(result["best_f1"])
    assert result["f1"] == pytest.approx(100 * (11 / 3) / 5)
    assert result["exact"] == 60.0   # a 1, c 0, b 1, e 0, d 1


def test_best_threshold_search_starts_from_no_answer_everywhere():
    dataset = squad_data(("x", []), ("y", ["cat"]))
    # x is unanswerable and predicted "The": its raw EM and F1 are 1 (both sides normalise
    # to ""), but the search counts any non-empty raw prediction of an unanswerable
    # question as -1. Start 1 (x); x -1 → 0; y +1 → 1, not > 1. So the best stays at the
    # start, 1/2 with threshold 0.0, below the plain score (nothing is thresholded at 1.0,
    # and x and y both score 1).
    result = scoring.squad_v2(dataset, {"x": "The", "y": "cat"}, {"x": -1.0, "y": 1.0})
    assert (result["exact"], result["f1"]) == (100.0, 100.0)
    assert (result["best_exact"], result["best_exact_thresh"]) == (50.0, 0.0)
    assert (result["best_f1"], result["best_f1_thresh"]) == (50.0, 0.0)


def test_squad_v2_reports_only_existing_groups():
    result = scoring.squad_v2(squad_data(("n", [])), {"n": "maybe"}, {"n": 0.0},
                              na_prob_thresh=-2.75)
    # 0.0 > -2.75: "no answer", correct. Search: start 1; n (answered) -1 → 0.
    assert result == {"exact": 100.0, "f1": 100.0, "total": 1, "NoAns_exact": 100.0,
                      "NoAns_f1": 100.0, "NoAns_total": 1, "best_exact": 100.0,
                      "best_exact_thresh": 0.0, "best_f1": 100.0, "best_f1_thresh": 0.0}


def test_squad_v2_without_na_probs_and_a_negative_threshold():
    # The script's default na_prob is 0.0, which exceeds -2.75: all count "no answer".
    result = scoring.squad_v2(squad_data(("h", ["cat"])), {"h": "cat"}, na_prob_thresh=-2.75)
    assert (result["exact"], result["HasAns_f1"]) == (0.0, 0.0)


def test_squad_v2_rejects_missing_predictions_and_na_probs():
    dataset = squad_data(("h", ["cat"]), ("n", []))
    with pytest.raises(ValueError, match=r"1 of 2 questions have no prediction.*: n"):
        scoring.squad_v2(dataset, {"h": "cat"})
    with pytest.raises(ValueError, match="na_probs lacks 1 questions: h"):
        scoring.squad_v2(dataset, {"h": "cat", "n": ""}, {"n": 0.0})


def test_mrqa_skips_unanswered_questions(caplog):
    golds = {"m1": ["Paris", "paris, France"], "m2": ["42"], "m3": ["blue whale"]}
    predictions = {"m1": "Paris.", "m3": "the whale"}
    # m1: EM 1, F1 1. m3: [whale] vs [blue, whale]: P 1, R 1/2, F1 2/3, EM 0. m2 skipped.
    with caplog.at_level(logging.WARNING):
        result = scoring.mrqa(golds, predictions)
    assert result == {"exact_match": 50.0, "f1": pytest.approx(100 * (5 / 3) / 2)}
    assert "m2" in caplog.text and "skipped" in caplog.text
    # Without skipping, m2 scores 0 over 3 questions.
    result = scoring.mrqa(golds, predictions, skip_no_answer=False)
    assert result == {"exact_match": pytest.approx(100 / 3),
                      "f1": pytest.approx(100 * (5 / 3) / 3)}
    # MRQA keeps v1.1's F1: "a" vs "the" is EM 1 but F1 0.
    assert scoring.mrqa({"q": ["the"]}, {"q": "a"}) == {"exact_match": 100.0, "f1": 0.0}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"pass json\['data'\]"):
        scoring.squad_v1({"version": "1.1", "data": []}, {})
    bad = [{"paragraphs": [{"qas": [{"question": "no id?", "answers": []}]}]}]
    with pytest.raises(ValueError, match=r"data\[0\]\.paragraphs\[0\]\.qas\[0\].*'id'"):
        scoring.squad_v2(bad, {})
    with pytest.raises(ValueError, match="'q' needs a non-empty list of gold answer texts"):
        scoring.squad_v1(squad_data(("q", [])), {"q": "x"})
    with pytest.raises(ValueError, match="'q' needs a non-empty list"):
        scoring.mrqa({"q": "Paris"}, {"q": "Paris"})     # a str, not a list of answers
    with pytest.raises(TypeError, match="prediction for question 'q' must be a str"):
        scoring.mrqa({"q": ["Paris"]}, {"q": None})
    with pytest.raises(ValueError, match="none of the 1 questions can be scored"):
        scoring.mrqa({"q": ["Paris"]}, {})
