"""QA scoring against worked examples computed by hand from the official scripts' rules,
and against a transcription of the official scripts on generated cases."""

import collections
import logging
import random
import re
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


# --- The official scripts, transcribed, against `scoring` on generated cases -------------
# A plain transcription of evaluate-v1.1.py, evaluate-v2.0.py (ELECTRA's
# `squad_official_eval.py`, whose logic is the official one) and mrqa_official_eval.py:
# the same steps, in the same order, deliberately not sharing a line with `scoring`.

def official_normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(re.compile(r"\b(a|an|the)\b", re.UNICODE), " ", s)
    return " ".join(s.split())


def official_f1_v1(prediction, ground_truth):
    prediction_tokens = official_normalize(prediction).split()
    ground_truth_tokens = official_normalize(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def official_exact_v1(prediction, ground_truth):
    return official_normalize(prediction) == official_normalize(ground_truth)


def official_evaluate_v1(dataset, predictions, skip_missing=False):
    """evaluate-v1.1.py's `evaluate`; with `skip_missing`, MRQA's `skip_no_answer`."""
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa["id"] not in predictions:
                    total += 0 if skip_missing else 1
                    continue
                total += 1
                ground_truths = [x["text"] for x in qa["answers"]]
                prediction = predictions[qa["id"]]
                exact_match += max(official_exact_v1(prediction, g) for g in ground_truths)
                f1 += max(official_f1_v1(prediction, g) for g in ground_truths)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


def official_tokens_v2(s):
    if not s:
        return []
    return official_normalize(s).split()


def official_exact_v2(a_gold, a_pred):
    return int(official_normalize(a_gold) == official_normalize(a_pred))


def official_f1_v2(a_gold, a_pred):
    gold_toks, pred_toks = official_tokens_v2(a_gold), official_tokens_v2(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def official_evaluate_v2(dataset, preds, na_probs=None, na_prob_thresh=1.0):
    """evaluate-v2.0.py's `main` without the files and plots."""
    given = na_probs is not None
    if not given:
        na_probs = {k: 0.0 for k in preds}
    qid_to_has_ans = {qa["id"]: bool(qa["answers"]) for article in dataset
                      for p in article["paragraphs"] for qa in p["qas"]}
    has_ans_qids = [k for k, v in qid_to_has_ans.items() if v]
    no_ans_qids = [k for k, v in qid_to_has_ans.items() if not v]
    exact_raw, f1_raw = {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                gold_answers = [a["text"] for a in qa["answers"]
                                if official_normalize(a["text"])] or [""]
                exact_raw[qa["id"]] = max(official_exact_v2(a, preds[qa["id"]])
                                          for a in gold_answers)
                f1_raw[qa["id"]] = max(official_f1_v2(a, preds[qa["id"]]) for a in gold_answers)

    def apply_no_ans_threshold(scores):
        return {qid: float(not qid_to_has_ans[qid]) if na_probs[qid] > na_prob_thresh else s
                for qid, s in scores.items()}

    def make_eval_dict(exact_scores, f1_scores, qid_list=None):
        qid_list = qid_list or list(exact_scores)
        return {"exact": 100.0 * sum(exact_scores[k] for k in qid_list) / len(qid_list),
                "f1": 100.0 * sum(f1_scores[k] for k in qid_list) / len(qid_list),
                "total": len(qid_list)}

    def find_best_thresh(scores):
        cur_score = best_score = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
        best_thresh = 0.0
        for qid in sorted(na_probs, key=lambda k: na_probs[k]):
            if qid not in scores:
                continue
            if qid_to_has_ans[qid]:
                diff = scores[qid]
            else:
                diff = -1 if preds[qid] else 0
            cur_score += diff
            if cur_score > best_score:
                best_score, best_thresh = cur_score, na_probs[qid]
        return 100.0 * best_score / len(scores), best_thresh

    exact_thresh, f1_thresh = apply_no_ans_threshold(exact_raw), apply_no_ans_threshold(f1_raw)
    out_eval = make_eval_dict(exact_thresh, f1_thresh)
    for prefix, qids in (("HasAns", has_ans_qids), ("NoAns", no_ans_qids)):
        if qids:
            for k, v in make_eval_dict(exact_thresh, f1_thresh, qids).items():
                out_eval[f"{prefix}_{k}"] = v
    if given:
        out_eval["best_exact"], out_eval["best_exact_thresh"] = find_best_thresh(exact_raw)
        out_eval["best_f1"], out_eval["best_f1_thresh"] = find_best_thresh(f1_raw)
    return out_eval


# Words that exercise every rule: articles (whole words or not), ASCII and non-ASCII
# punctuation, case, Unicode whitespace, repeats from a small vocabulary.
WORDS = ["the", "The", "a", "A.", "an", "An", "theatre", "cat", "Cat,", "cat", "mat", "sat",
         "the-end", "the—end", "1-2", "1—2", "“Café”", "¿qué?", "(1966)", "Denver", "broncos!",
         "...", "-", "'s", "x\u00a0y", "é", "ÉTÉ", "a.m.", "U.S.", "10th", "century"]


def random_text(rng, max_words=5):
    words = rng.choices(WORDS, k=rng.randint(0, max_words))
    return rng.choice([" ", "  ", "\t", "\u3000"]).join(words) + rng.choice(["", " ", "."])


def related_text(rng, gold):
    """Often a perturbed copy of a gold answer, so that EM and F1 take every value."""
    choice = rng.random()
    if choice < 0.25:
        return gold
    if choice < 0.5:
        words = gold.split()
        kept = words[:rng.randint(0, len(words))]
        return " ".join(kept + rng.choices(WORDS, k=rng.randint(0, 2)))
    if choice < 0.6:
        return ""
    return random_text(rng)


def random_dataset(rng, n_questions, unanswerable=0.0):
    questions = []
    for i in range(n_questions):
        golds = [] if rng.random() < unanswerable else [random_text(rng)
                                                        for _ in range(rng.randint(1, 3))]
        questions.append((f"q{i}", golds))
    return squad_data(*questions)


def random_predictions(rng, dataset, missing=0.0):
    predictions = {}
    for qid, golds in _questions(dataset):
        if rng.random() >= missing:
            predictions[qid] = related_text(rng, rng.choice(golds)) if golds else (
                "" if rng.random() < 0.5 else random_text(rng))
    return predictions


def _questions(dataset):
    return [(qa["id"], [a["text"] for a in qa["answers"]])
            for p in dataset[0]["paragraphs"] for qa in p["qas"]]


def test_answer_scores_equal_the_official_scripts_on_3000_random_pairs():
    rng = random.Random(20240611)
    for _ in range(3000):
        prediction, gold = random_text(rng), random_text(rng)
        if rng.random() < 0.5:
            prediction = related_text(rng, gold)
        assert scoring.normalize_answer(prediction) == official_normalize(prediction)
        assert scoring.exact_match(prediction, gold) == official_exact_v2(gold, prediction)
        assert scoring.f1(prediction, gold) == official_f1_v2(gold, prediction), (prediction, gold)
        assert scoring.f1_v1(prediction, gold) == official_f1_v1(prediction, gold), (prediction,
                                                                                     gold)


@pytest.mark.parametrize("seed", range(100))
def test_squad_and_mrqa_scores_equal_the_official_scripts(seed):
    """30 questions per case, 100 cases (3000 questions) for each of v1.1, v2.0 and MRQA."""
    rng = random.Random(seed)
    dataset = random_dataset(rng, 30)
    predictions = random_predictions(rng, dataset, missing=0.1)
    assert scoring.squad_v1(dataset, predictions) == pytest.approx(
        official_evaluate_v1(dataset, predictions), rel=1e-12)
    golds = dict(_questions(dataset))
    for skip in (True, False):
        if skip and not predictions:
            continue
        assert scoring.mrqa(golds, predictions, skip_no_answer=skip) == pytest.approx(
            official_evaluate_v1(dataset, predictions, skip_missing=skip), rel=1e-12)

    dataset = random_dataset(rng, 30, unanswerable=rng.choice([0.0, 0.3, 0.6, 1.0]))
    predictions = random_predictions(rng, dataset)
    # Null odds on a coarse grid, so that ties test the search's stable order.
    na_probs = {qid: rng.choice([-4.0, -2.75, -1.0, 0.0, 0.5, rng.uniform(-5, 2)])
                for qid in predictions}
    for probs, thresh in ((None, 1.0), (None, -2.75), (na_probs, -2.75), (na_probs, 1.0),
                          (na_probs, rng.uniform(-5, 2))):
        expected = official_evaluate_v2(dataset, predictions, probs, thresh)
        result = scoring.squad_v2(dataset, predictions, probs, thresh)
        assert list(result) == list(expected)
        assert result == pytest.approx(expected, rel=1e-12)
