"""Each task type's outputs on int32 features: what its `<task>_ids` signature returns.

The functions take the encoder and the task's head and return `outputs(features)`; the
heads give their logits through their public inference methods (`Head.logits`,
`QAHead.infer`), so serving computes exactly what evaluation computes.
"""

import tensorflow as tf

from finetune.serving.text import pad_to


def classification_outputs(encoder, head, label_names):
    """`logits`, `probabilities` [B, n] (float32), `label_id` [B] (int32, the argmax, as the
    original's `predictions`) and `label` [B] (its name, e.g. "entailment")."""
    names = tf.constant(list(label_names))

    def outputs(features):
        logits = head.logits(encoder(features, training=False))
        label_id = tf.argmax(logits, -1, output_type=tf.int32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits),
                "label_id": label_id, "label": tf.gather(names, label_id)}

    return outputs


def classify_api(label_names):
    """TF Serving's Classify API from a classifier's outputs: `classes` [B, n] (the label
    names, in every row) and `scores` [B, n] (their probabilities)."""
    names = tf.constant(list(label_names))

    def classify(outputs):
        scores = outputs["probabilities"]
        return {"classes": tf.tile(names[None], [tf.shape(scores)[0], 1]), "scores": scores}

    return classify


def regress_api(outputs):
    """TF Serving's Regress API from a regressor's outputs: `outputs` [B], the `score` on
    the task's scale."""
    return {"outputs": outputs["score"]}


def regression_outputs(encoder, head, min_value, max_value):
    """`prediction` [B]: the head's output on the training scale ((y − min) / max, STS: y / 5,
    the original's `predictions`); `score` [B]: back on the task's scale (STS: 0–5)."""
    def outputs(features):
        prediction = tf.squeeze(head.logits(encoder(features, training=False)), -1)
        return {"prediction": prediction, "score": prediction * max_value + min_value}

    return outputs


def tagging_outputs(encoder, head, tags):
    """Per token: `logits` [B, S, n] (float32), `label_id` [B, S] (int32) and `label` [B, S]
    (the tag, e.g. "B-NP"). Training labels only the first word-piece of each word, with
    `segment_ids` 1 on every real token: the ids signature needs the same layout."""
    names = tf.constant(list(tags))

    def outputs(features):
        logits = head.logits(encoder(features, training=False))
        label_id = tf.argmax(logits, -1, output_type=tf.int32)
        return {"logits": logits, "label_id": label_id, "label": tf.gather(names, label_id)}

    return outputs


def qa_outputs(encoder, head, config, v2):
    """The QA head on one window per example, and the best span decoded from it.

    Features are padded to `max_seq_length` first (the beam needs `beam_size` positions,
    and training records were that long). The window is read as the original reads a
    window: context tokens are the segment-1 tokens before the final [SEP], and every one
    is in its max-context window (there is only one).

    Outputs: the head's `start_logits` [B, S], `answerable_logit` [B] and beam
    (`start_top_log_probs`, `start_top_index` [B, k], `end_top_log_probs`, `end_top_index`
    [B, k, k], joint prediction) or `end_logits` [B, S]; the decoded `start_index`,
    `end_index` [B] (int32 positions in the input, −1 if no candidate survives the
    original's drop rules), `score` [B] (start + end log-prob, or logits when not joint; 0
    without a candidate, as the original's "empty" entry); `no_answer_logit` [B] (the
    original's null odds: the answerable logit, positive means "no answer"; without the
    classifier, start + end logit at [CLS] minus `score`), `no_answer_probability` [B]
    (sigmoid of the answerable logit, with the classifier) and, for SQuAD 2.0,
    `has_answer` [B]: a span was found and `no_answer_logit` ≤ `qa_na_threshold`.
    """
    s = config.max_seq_length

    def outputs(features):
        features = {k: pad_to(v, s) for k, v in features.items()}
        out = head.infer(encoder(features, training=False), features)
        keep = (("start_top_log_probs", "start_top_index", "end_top_log_probs",
                 "end_top_index") if config.joint_prediction else ("end_logits",))
        result = {k: out[k] for k in ("start_logits", "answerable_logit") + keep}
        start, end, score = best_span(out, features, config)
        result.update(start_index=start, end_index=end, score=score)
        if config.answerable_classifier:
            result["no_answer_logit"] = out["answerable_logit"]
            result["no_answer_probability"] = tf.sigmoid(out["answerable_logit"])
        elif v2:
            result["no_answer_logit"] = (out["start_logits"][:, 0] + out["end_logits"][:, 0]
                                         - score)
        if v2:
            result["has_answer"] = (start >= 0) & (
                result["no_answer_logit"] <= config.qa_na_threshold)
        return result

    return outputs


def best_span(head_outputs, features, config):
    """The best candidate span of one window per example
    (`finetune.qa.decoding.window_candidates` in the graph).

    Candidates: the beam (joint prediction) or the n-best starts × n-best ends; dropped as
    the original drops them (past the tokens, start at [CLS], not a context token, end
    before start, longer than `max_answer_length`). The best has the highest start + end
    score; on equal scores the first in the original's loop order.

    Returns:
        (start_index, end_index, score): [B] int32 positions (−1 when no candidate is left)
        and float32 scores (0 then).
    """
    if config.joint_prediction:
        starts, ends = head_outputs["start_top_index"], head_outputs["end_top_index"]
        start_scores = head_outputs["start_top_log_probs"]
        end_scores = head_outputs["end_top_log_probs"]
    else:
        start_scores, starts = tf.math.top_k(head_outputs["start_logits"], config.n_best_size)
        end_scores, end_index = tf.math.top_k(head_outputs["end_logits"], config.n_best_size)
        shape = [tf.shape(starts)[0], config.n_best_size, config.n_best_size]
        ends = tf.broadcast_to(end_index[:, None, :], shape)
        end_scores = tf.broadcast_to(end_scores[:, None, :], shape)
    length = tf.reduce_sum(features["input_mask"], -1, keepdims=True)  # [B, 1]
    position = tf.range(tf.shape(features["input_ids"])[1])[None]
    is_context = (tf.equal(features["segment_ids"], 1) & (position < length - 1))
    starts = tf.broadcast_to(starts[:, :, None], tf.shape(ends))
    valid = ((starts < length[:, :, None]) & (ends < length[:, :, None]) & (starts != 0)
             & tf.gather(is_context, starts, batch_dims=1)
             & tf.gather(is_context, ends, batch_dims=1)
             & (ends >= starts) & (ends - starts + 1 <= config.max_answer_length))
    scores = start_scores[:, :, None] + end_scores
    flat = tf.reshape(tf.where(valid, scores, -float("inf")), [tf.shape(scores)[0], -1])
    best = tf.argmax(flat, -1, output_type=tf.int32)
    found = tf.reduce_any(valid, [1, 2])

    def pick(values):
        return tf.gather(tf.reshape(values, tf.shape(flat)), best, batch_dims=1)

    return (tf.where(found, pick(starts), -1), tf.where(found, pick(ends), -1),
            tf.where(found, pick(scores), 0.0))
