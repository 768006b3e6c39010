"""QA windows: the record of one window of a QA example, and the arithmetic that places the
windows (`QATask.windows` assembles them, as the original's `convert_examples_to_features`).

Each doc token of the context is word-pieced; the query is truncated to `max_query_length`;
the document is cut into sliding windows `[CLS] query [SEP] doc [SEP]` of at most
S − |q| − 3 doc tokens whose start advances by min(window length, `doc_stride`). Each doc
token is "max context" in the window where min(left, right) + 0.01·length is largest (the
first such window on ties).
"""

import dataclasses

import numpy as np

# Windows per example are numbered within `eid` = 1000·example + window (the original's).
MAX_WINDOWS = 1000


@dataclasses.dataclass
class QAWindow:
    """One record: a window of an example's document (the original's eval-time features).

    `token_to_orig[i]` is the doc-token index of input position i (−1 outside the
    document) and `token_is_max_context[i]` whether this window is that token's max-context
    window; `start_position`/`end_position` are the training labels (0: [CLS]).
    """

    eid: int
    example_index: int
    doc_span_index: int
    input_ids: list
    segment_ids: list
    token_to_orig: list
    token_is_max_context: list
    start_position: int = 0
    end_position: int = 0
    is_impossible: int = 0


def doc_spans(n_tokens, max_tokens_for_doc, doc_stride):
    """The sliding windows over `n_tokens` doc sub-tokens, as (start, length) pairs."""
    spans, start = [], 0
    while start < n_tokens:
        length = min(n_tokens - start, max_tokens_for_doc)
        spans.append((start, length))
        if start + length == n_tokens:
            break
        start += min(length, doc_stride)
    return spans


def max_context_spans(spans, n_tokens):
    """For each doc sub-token, the index of its max-context window (−1 if in none).

    Score min(left, right) + 0.01·length; the first window wins ties (the original's
    `_check_is_max_context`, computed for all tokens at once).
    """
    best_score = np.full(n_tokens, -np.inf)
    best_span = np.full(n_tokens, -1)
    for index, (start, length) in enumerate(spans):
        position = np.arange(start, start + length)
        score = np.minimum(position - start, start + length - 1 - position) + 0.01 * length
        better = score > best_score[position]
        best_score[position[better]] = score[better]
        best_span[position[better]] = index
    return best_span


def doc_pieces(doc_tokens, word_ids):
    """(doc word-piece ids, piece → word index, word → its first piece index)."""
    doc_ids, tok_to_orig, orig_to_tok = [], [], []
    for i, word in enumerate(doc_tokens):
        orig_to_tok.append(len(doc_ids))
        doc_ids += word_ids[word]
        tok_to_orig += [i] * len(word_ids[word])
    return doc_ids, tok_to_orig, orig_to_tok


def improve_answer_span(doc_ids, start, end, answer_ids):
    """The first (start, end) inside [start, end] whose sub-tokens are exactly the
    tokenised answer, else the input span (the original's `_improve_answer_span`)."""
    for new_start in range(start, end + 1):
        for new_end in range(end, new_start - 1, -1):
            if doc_ids[new_start:new_end + 1] == answer_ids:
                return new_start, new_end
    return start, end
