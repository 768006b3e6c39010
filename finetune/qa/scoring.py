"""The official SQuAD v1.1, SQuAD v2.0 and MRQA answer scoring.

Our own statement of the scripts the original runs: `evaluate-v1.1.py`
(`finetune/qa/squad_official_eval_v1.py`), `evaluate-v2.0.py` (`squad_official_eval.py`)
and MRQA's `mrqa_official_eval.py`. Results are the same numbers, under the same keys, as
the scripts produce. The three scripts normalise answers identically; they differ in:
- F1 when a side has no token: v1.1 and MRQA return 0 whenever no token is shared, so
  empty vs empty is 0 (`f1_v1`). v2.0 returns 1 when both are empty and 0 when only one
  is (`f1`).
- Gold answers: v2.0 drops those whose normalised text is empty and scores a question
  without any against [""]. v1.1 and MRQA keep them all.
- Missing predictions: v1.1 scores them 0 and keeps them in the total. MRQA, as the
  original calls it, skips them. v2.0 cannot score them (the script fails with a
  KeyError), so it is an error here.
"""

import collections
import logging
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)  # ASCII only: "—", "“" and "¿" stay
_SHOWN_IDS = 5  # question ids quoted in a warning or an error

log = logging.getLogger(__name__)


def normalize_answer(s):
    """The official normalisation, in its order.

    Steps: lower-case; drop ASCII punctuation (`string.punctuation`); replace the whole
    words a/an/the with a space; split on any (Unicode) whitespace and re-join with one
    space. Punctuation goes before articles, so "the-end" becomes "theend", but "the—end"
    becomes "—end".

    Args:
        s: an answer text.

    Returns:
        The normalised text.
    """
    text = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction, gold):
    """1.0 if the normalised texts are equal, else 0.0 (v2's `compute_exact`; v1.1 alike).

    Args:
        prediction: the predicted text.
        gold: one gold answer text.

    Returns:
        1.0 or 0.0.
    """
    return float(normalize_answer(prediction) == normalize_answer(gold))


def _token_f1(prediction_tokens, gold_tokens):
    """F1 of two token bags (repeats count up to the smaller multiplicity); 0 if none shared."""
    common = collections.Counter(prediction_tokens) & collections.Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def f1(prediction, gold):
    """Token-bag F1 of the normalised texts, with SQuAD v2.0 semantics (`compute_f1`).

    If either side has no token, the score is 1.0 when both have none, else 0.0.

    Args:
        prediction: the predicted text.
        gold: one gold answer text.

    Returns:
        The F1 in [0, 1].
    """
    prediction_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not prediction_tokens or not gold_tokens:
        return float(prediction_tokens == gold_tokens)
    return _token_f1(prediction_tokens, gold_tokens)


def f1_v1(prediction, gold):
    """Token-bag F1 with SQuAD v1.1 and MRQA semantics (`f1_score`): 0.0 with no shared token.

    This differs from `f1` only when both texts normalise to nothing: 0.0 here, 1.0 there.

    Args:
        prediction: the predicted text.
        gold: one gold answer text.

    Returns:
        The F1 in [0, 1].
    """
    return _token_f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def _max_over_golds(metric, prediction, golds, qid):
    """The best score of `prediction` against any gold (`metric_max_over_ground_truths`)."""
    if not isinstance(prediction, str):
        raise TypeError(f"prediction for question {qid!r} must be a str, "
                        f"got {type(prediction).__name__}: {prediction!r}")
    if isinstance(golds, str) or not golds:
        raise ValueError(f"question {qid!r} needs a non-empty list of gold answer texts, "
                         f"got {golds!r} (score unanswerable questions with squad_v2)")
    return max(metric(prediction, gold) for gold in golds)


def _shown(qids):
    """A short, readable list of question ids for messages."""
    more = f" and {len(qids) - _SHOWN_IDS} more" if len(qids) > _SHOWN_IDS else ""
    return ", ".join(map(str, qids[:_SHOWN_IDS])) + more


def _squad_questions(dataset):
    """Yields (qid, gold texts) for every question of a SQuAD "data" list, in file order.

    Args:
        dataset: the "data" list of a SQuAD JSON file: articles with "paragraphs", each with
            "qas" of {"id", "answers": [{"text", ...}]}.

    Raises:
        ValueError: naming the place (e.g. `data[0].paragraphs[1].qas[2]`) of a malformed entry.
    """
    if not isinstance(dataset, list):
        hint = " (pass json['data'])" if isinstance(dataset, dict) and "data" in dataset else ""
        raise ValueError(f"expected the 'data' list of a SQuAD JSON file{hint}, "
                         f"got {type(dataset).__name__}")
    for i, article in enumerate(dataset):
        for j, paragraph in enumerate(_field(article, "paragraphs", f"data[{i}]")):
            for k, qa in enumerate(_field(paragraph, "qas", f"data[{i}].paragraphs[{j}]")):
                where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                answers = _field(qa, "answers", where)
                qid = _field(qa, "id", where)
                yield qid, [_field(a, "text", f"{where}.answers[{n}]")
                            for n, a in enumerate(answers)]


def _field(entry, key, where):
    """`entry[key]`, or a ValueError naming `where` and the keys it has."""
    if not isinstance(entry, dict) or key not in entry:
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ValueError(f"SQuAD {where}: expected a dict with {key!r}, got {found}")
    return entry[key]


def squad_v1(dataset, predictions):
    """The official SQuAD v1.1 evaluation (`evaluate-v1.1.py`'s `evaluate`).

    Each question scores the maximum EM and `f1_v1` over its gold answers. A question
    without a prediction scores 0 and still counts in the total; the script prints each
    one, and here they are logged as one warning.

    Args:
        dataset: the "data" list of a SQuAD JSON file.
        predictions: {question id: predicted text}.

    Returns:
        {"exact_match": .., "f1": ..}, both ×100 over all questions.
    """
    total, missing = 0, []
    exact_sum = f1_sum = 0
    for qid, golds in _squad_questions(dataset):
        total += 1
        if qid not in predictions:
            missing.append(qid)
            continue
        exact_sum += _max_over_golds(exact_match, predictions[qid], golds, qid)
        f1_sum += _max_over_golds(f1_v1, predictions[qid], golds, qid)
    if total == 0:
        raise ValueError("the SQuAD dataset has no question to score")
    if missing:
        log.warning("squad_v1: %d of %d questions are unanswered and score 0: %s",
                    len(missing), total, _shown(missing))
    return {"exact_match": 100.0 * exact_sum / total, "f1": 100.0 * f1_sum / total}


def _v2_raw_scores(dataset, predictions):
    """Per-question EM and F1 before any no-answer threshold (`get_raw_scores`).

    Returns:
        (has_answer, exact, f1): dicts keyed by question id in file order. `has_answer` is
        whether the question lists any answer (`make_qid_to_has_ans`), even one that
        normalises to "".
    """
    has_answer, exact_raw, f1_raw, missing = {}, {}, {}, []
    for qid, golds in _squad_questions(dataset):
        has_answer[qid] = bool(golds)
        golds = [gold for gold in golds if normalize_answer(gold)] or [""]
        if qid not in predictions:
            missing.append(qid)
            continue
        exact_raw[qid] = _max_over_golds(exact_match, predictions[qid], golds, qid)
        f1_raw[qid] = _max_over_golds(f1, predictions[qid], golds, qid)
    if not has_answer:
        raise ValueError("the SQuAD dataset has no question to score")
    if missing:
        raise ValueError(f"squad_v2: {len(missing)} of {len(has_answer)} questions have no "
                         f"prediction (the official v2.0 script cannot score them): "
                         f"{_shown(missing)}")
    return has_answer, exact_raw, f1_raw


def _apply_no_answer_threshold(scores, na_probs, has_answer, na_prob_thresh):
    """Scores with "no answer" predicted where na_prob > threshold (`apply_no_ans_threshold`).

    A question predicted "no answer" scores 1.0 if it has no answer, else 0.0.
    """
    return {qid: float(not has_answer[qid]) if na_probs[qid] > na_prob_thresh else score
            for qid, score in scores.items()}


def _mean_scores(exact_scores, f1_scores, qids):
    """{"exact", "f1", "total"} over `qids`, ×100 (`make_eval_dict`)."""
    return {"exact": 100.0 * sum(exact_scores[qid] for qid in qids) / len(qids),
            "f1": 100.0 * sum(f1_scores[qid] for qid in qids) / len(qids),
            "total": len(qids)}


def find_best_thresh(predictions, scores, na_probs, has_answer):
    """The best total score over no-answer thresholds (the official `find_best_thresh`).

    The search starts from answering "no answer" everywhere (score = the number of
    unanswerable questions, threshold 0.0). It then walks the questions in increasing
    na_prob (a stable sort, so ties keep `na_probs`' order) and answers one more question
    at each step. A step adds the question's score if it has an answer. Otherwise it adds
    -1 if its raw predicted text is non-empty (even one that normalises to "", such as
    "the"), else 0. The threshold becomes the question's na_prob whenever the running
    score strictly beats the best so far.

    Args:
        predictions: {question id: predicted text}.
        scores: {question id: raw (unthresholded) EM or F1 in [0, 1]}.
        na_probs: {question id: no-answer score}; ids not in `scores` are skipped.
        has_answer: {question id: whether it has a gold answer}, over the whole dataset.

    Returns:
        (best score ×100 over len(scores) questions, its threshold).
    """
    score = best_score = sum(1 for qid in has_answer if not has_answer[qid])
    best_thresh = 0.0
    for qid in sorted(na_probs, key=na_probs.get):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predictions[qid]:
            score += -1
        if score > best_score:
            best_score, best_thresh = score, float(na_probs[qid])
    return 100.0 * best_score / len(scores), best_thresh


def squad_v2(dataset, predictions, na_probs=None, na_prob_thresh=1.0):
    """The official SQuAD v2.0 evaluation (`evaluate-v2.0.py`'s `main`).

    Each question scores the maximum EM and `f1` over its gold answers whose normalised
    text is non-empty, or against [""] if there is none. A question whose na_prob exceeds
    `na_prob_thresh` counts as answered "no answer". ELECTRA passes the null odds (the
    minimum answerable logit over windows) and `qa_na_threshold` = -2.75.

    Args:
        dataset: the "data" list of a SQuAD 2.0 JSON file; an unanswerable question has
            "answers": [].
        predictions: {question id: predicted text}, one for every question.
        na_probs: {question id: no-answer score}, or None. As in the script, None means
            0.0 for every question and no best-threshold search. Note that 0.0 exceeds
            a negative `na_prob_thresh`.
        na_prob_thresh: the no-answer threshold (the script's default is 1.0).

    Returns:
        In the script's order: "exact", "f1", "total"; "HasAns_exact", "HasAns_f1",
        "HasAns_total" if any question has an answer; the same three with "NoAns_" if any
        has none; and "best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh" if
        `na_probs` is given. Scores are ×100.

    Raises:
        ValueError: a question without a prediction, or without an na_prob when
            `na_probs` is given.
    """
    has_answer, exact_raw, f1_raw = _v2_raw_scores(dataset, predictions)
    if na_probs is None:
        probs = collections.defaultdict(float)
    else:
        probs = na_probs
        lacking = [qid for qid in exact_raw if qid not in na_probs]
        if lacking:
            raise ValueError(f"squad_v2: na_probs lacks {len(lacking)} questions: "
                             f"{_shown(lacking)}")
    exact_thresh = _apply_no_answer_threshold(exact_raw, probs, has_answer, na_prob_thresh)
    f1_thresh = _apply_no_answer_threshold(f1_raw, probs, has_answer, na_prob_thresh)
    result = _mean_scores(exact_thresh, f1_thresh, list(exact_thresh))
    for prefix, answerable in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid, has in has_answer.items() if has == answerable]
        if qids:
            group = _mean_scores(exact_thresh, f1_thresh, qids)
            result.update((f"{prefix}_{key}", value) for key, value in group.items())
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, thresh = find_best_thresh(predictions, raw, na_probs, has_answer)
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best, thresh
    return result


def mrqa(golds, predictions, skip_no_answer=True):
    """The official MRQA evaluation (`mrqa_official_eval.py`'s `evaluate`).

    Each question scores the maximum EM and `f1_v1` over its gold answers. The original
    calls it with `skip_no_answer=True`: a question without a prediction is left out of
    the total. With False, it scores 0 and counts, as in SQuAD v1.1.

    Args:
        golds: {question id ("qid"): list of gold answer texts ("answers")}.
        predictions: {question id: predicted text}.
        skip_no_answer: whether questions without a prediction are left out.

    Returns:
        {"exact_match": .., "f1": ..}, both ×100.
    """
    total, missing = 0, []
    exact_sum = f1_sum = 0
    for qid, answers in golds.items():
        if qid not in predictions:
            missing.append(qid)
            total += 0 if skip_no_answer else 1
            continue
        total += 1
        exact_sum += _max_over_golds(exact_match, predictions[qid], answers, qid)
        f1_sum += _max_over_golds(f1_v1, predictions[qid], answers, qid)
    if total == 0:
        raise ValueError(f"mrqa: none of the {len(golds)} questions can be scored "
                         "(no question, or no prediction with skip_no_answer)")
    if missing:
        log.warning("mrqa: %d of %d questions are unanswered and %s: %s", len(missing),
                    len(golds), "skipped" if skip_no_answer else "score 0", _shown(missing))
    return {"exact_match": 100.0 * exact_sum / total, "f1": 100.0 * f1_sum / total}
