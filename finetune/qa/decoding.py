"""From the QA head's outputs to answer texts, as the original (its
`SpanBasedQAScorer.write_predictions` and `get_final_text`).

For each window, the candidate spans are the 20×20 beam (joint prediction) or the n-best
starts × n-best ends; a candidate is dropped if an index is past the tokens, the start is
[CLS], an index is not a context token (this drops the final [SEP]), the start is not in
its max-context window, the end precedes the start, or it is longer than
`max_answer_length`. Candidates of all windows are sorted by start + end score and the
first `n_best_size` distinct texts kept ("empty" if there are none). A text is the
word-pieces joined and projected back onto the original words by `get_final_text`.

SQuAD 2.0 null odds: the minimum over windows of `answerable_logit` (with the answerable
classifier), else of start_logits[0] + end_logits[0] minus the best non-null score.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from pretrain_data import tokenization

# The null score before any window is seen ("large and positive").
NO_WINDOW_NULL_SCORE = 1000000.0


@dataclasses.dataclass
class Prediction:
    """One question's decoded answer.

    Args:
        text: the best non-null text (SQuAD 2.0) or the best text.
        nbest: the kept candidates, best first, as (text, start score, end score).
        null_odds: SQuAD 2.0 only (else None): above `qa_na_threshold` means no answer.
    """

    text: str
    nbest: list
    null_odds: float | None = None


def best_indexes(logits, n_best_size):
    """The indices of the `n_best_size` largest logits, largest first (ties: lower index)."""
    return np.argsort(-np.asarray(logits), kind="stable")[:n_best_size]


def window_candidates(window, result, config):
    """The valid candidate spans of one window, in the original's loop order.

    Args:
        window: a `QAWindow` (`input_ids`, `token_to_orig`, `token_is_max_context`).
        result: the head's outputs for this window's record ({key: array}).
        config: `joint_prediction`, `n_best_size`, `max_answer_length`.
    Returns:
        (start_index, end_index, start_score, end_score): 1-D arrays, one entry per
        candidate; scores are log-probs (joint) or logits.
    """
    if config.joint_prediction:
        starts = np.asarray(result["start_top_index"])
        ends = np.asarray(result["end_top_index"])
        start_scores = np.asarray(result["start_top_log_probs"])
        end_scores = np.asarray(result["end_top_log_probs"])
    else:
        start_logits = np.asarray(result["start_logits"])
        end_logits = np.asarray(result["end_logits"])
        starts = best_indexes(start_logits, config.n_best_size)
        end_indexes = best_indexes(end_logits, config.n_best_size)
        ends = np.broadcast_to(end_indexes, (len(starts), len(end_indexes)))
        start_scores, end_scores = start_logits[starts], end_logits[ends]
    n = len(window.input_ids)
    token_to_orig = np.asarray(window.token_to_orig)
    is_max_context = np.asarray(window.token_is_max_context, bool)
    start_2d = np.broadcast_to(starts[:, None], ends.shape)
    inside = (start_2d >= 0) & (start_2d < n) & (ends >= 0) & (ends < n)
    s, e = np.where(inside, start_2d, 0), np.where(inside, ends, 0)
    valid = (inside & (start_2d != 0) & (token_to_orig[s] >= 0) & (token_to_orig[e] >= 0)
             & is_max_context[s] & (ends >= start_2d)
             & (ends - start_2d + 1 <= config.max_answer_length))
    i, j = np.nonzero(valid)
    return starts[i], ends[i, j], start_scores[i], end_scores[i, j]


def null_score(result, config):
    """A window's no-answer score: `answerable_logit`, or start + end logit at [CLS]."""
    if config.answerable_classifier:
        return result["answerable_logit"]
    return result["start_logits"][0] + result["end_logits"][0]


def wordpiece_text(tokens):
    """Word-pieces joined back into text ("##" continuations glued), spaces normalised."""
    text = " ".join(tokens).replace(" ##", "").replace("##", "")
    return " ".join(text.strip().split())


def get_final_text(pred_text, orig_text, tok_text):
    """Projects a predicted (normalised) text back onto the original text.

    `tok_text` is `orig_text` through the BasicTokenizer, tokens joined by spaces. The
    prediction is found in it, and the span mapped back character by character ignoring
    spaces. If it is not found, or lower-casing/accent stripping changed the number of
    non-space characters, the whole `orig_text` is returned (the original's fallback).
    """
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns_to_s = [i for i, c in enumerate(orig_text) if c != " "]
    tok_ns_to_s = [i for i, c in enumerate(tok_text) if c != " "]
    if len(orig_ns_to_s) != len(tok_ns_to_s):
        return orig_text
    tok_s_to_ns = {s: ns for ns, s in enumerate(tok_ns_to_s)}
    if start not in tok_s_to_ns or end not in tok_s_to_ns:
        return orig_text
    return orig_text[orig_ns_to_s[tok_s_to_ns[start]]:orig_ns_to_s[tok_s_to_ns[end]] + 1]


def basic_texts(words, do_lower_case):
    """{word: its BasicTokenizer tokens joined by spaces}, in one batched call.

    Whitespace-separated words are tokenised independently, so the BasicTokenizer text of
    a span of words is these texts joined by spaces (skipping empty ones).
    """
    words = list(dict.fromkeys(words))
    if not words:
        return {}
    tokens = tokenization.BasicTokenizer(do_lower_case).tokenize(
        tf.constant([w.encode("utf-8") for w in words]))
    joined = tf.strings.reduce_join(tokens, axis=1, separator=" ").numpy()
    return {w: t.decode("utf-8") for w, t in zip(words, joined)}


def decode(examples, windows, outputs, config, v2, inv_vocab):
    """Answers for every example.

    Args:
        examples: `QAExample`s (their `doc_tokens`).
        windows: their `QAWindow`s, as `QATask.windows(examples, is_training=False)`.
        outputs: {head output: array [N, ...]} with "eid" [N]; every window's record must
            be present (any order).
        config: the decoding fields of a `FinetuningConfig` (`joint_prediction`,
            `n_best_size`, `max_answer_length`, `answerable_classifier`, `do_lower_case`).
        v2: compute null odds (SQuAD 2.0).
        inv_vocab: {id: word-piece}.
    Returns:
        A `Prediction` per example, in order.
    """
    row_of = {int(eid): row for row, eid in enumerate(np.asarray(outputs["eid"]))}
    missing = [w.eid for w in windows if w.eid not in row_of]
    if missing:
        raise ValueError(f"QA decoding: no head output for {len(missing)} record(s), e.g. "
                         f"eid {missing[0]}; outputs must cover every window's record")
    by_example = [[] for _ in examples]
    for window in windows:
        by_example[window.example_index].append(window)
    words = basic_texts([w for e in examples for w in e.doc_tokens], config.do_lower_case)
    predictions = []
    for example, example_windows in zip(examples, by_example):
        results = [{k: v[row_of[w.eid]] for k, v in outputs.items()} for w in example_windows]
        predictions.append(_decode_example(example, example_windows, results, config, v2,
                                           inv_vocab, words))
    return predictions


def _decode_example(example, windows, results, config, v2, inv_vocab, words):
    parts = [window_candidates(w, r, config) for w, r in zip(windows, results)]
    window_index = np.repeat(np.arange(len(parts)), [len(p[0]) for p in parts])
    starts, ends, start_scores, end_scores = (
        np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in range(4))
    # Sorted by total score, best first; equal scores keep their order (Python's sort).
    order = np.argsort(-(start_scores + end_scores), kind="stable")
    nbest, seen = [], set()
    for k in order:
        if len(nbest) >= config.n_best_size:
            break
        text = _candidate_text(example, windows[window_index[k]], starts[k], ends[k],
                               inv_vocab, words)
        if text not in seen:
            seen.add(text)
            nbest.append((text, start_scores[k], end_scores[k]))
    if not nbest:
        nbest.append(("empty", 0.0, 0.0))
    best_non_null = next((entry for entry in nbest if entry[0]), nbest[0])
    if not v2:
        return Prediction(nbest[0][0], nbest)
    score_null = min([null_score(r, config) for r in results], default=NO_WINDOW_NULL_SCORE)
    null_odds = (score_null if config.answerable_classifier
                 else score_null - best_non_null[1] - best_non_null[2])
    return Prediction(best_non_null[0], nbest, float(null_odds))


def _candidate_text(example, window, start, end, inv_vocab, words):
    """A candidate's final text: its word-pieces projected onto the original words."""
    pred_text = wordpiece_text([inv_vocab[i] for i in window.input_ids[start:end + 1]])
    orig_words = example.doc_tokens[window.token_to_orig[start]:window.token_to_orig[end] + 1]
    tok_text = " ".join(t for t in (words[w] for w in orig_words) if t)
    return get_final_text(pred_text, " ".join(orig_words), tok_text)
