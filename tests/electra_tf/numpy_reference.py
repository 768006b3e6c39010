"""An independent float64 NumPy transcription of the original's forward pass.

It reads weights by their ORIGINAL checkpoint names, so comparing it with our Keras models
checks both the numerics and the name mapping, for configurations the fixtures lack.
"""

import math

import numpy as np

_erf = np.vectorize(math.erf)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def layer_norm(x, w, scope):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]


def dense(x, w, scope, act=None):
    y = x @ w[f"{scope}/kernel"] + w[f"{scope}/bias"]
    return act(y) if act else y


def bert(w, scope, features, num_heads, embeddings_scope="electra", direction=None):
    """`BertModel(scope=scope)`; returns (sequence_output, attention_probs per layer)."""
    ids, mask, seg = (np.asarray(features[k]) for k in ("input_ids", "input_mask",
                                                          "segment_ids"))
    batch, seq = ids.shape
    e = f"{embeddings_scope}/embeddings"
    x = (w[f"{e}/word_embeddings"][ids] + w[f"{e}/token_type_embeddings"][seg]
         + w[f"{e}/position_embeddings"][:seq])
    x = layer_norm(x, w, f"{e}/LayerNorm")
    if f"{scope}/embeddings_project/kernel" in w:
        x = dense(x, w, f"{scope}/embeddings_project")
    allowed = np.broadcast_to(mask[:, None, None, :].astype(np.float64),
                              (batch, 1, seq, seq)).copy()
    if direction == "ltr":
        allowed *= np.tril(np.ones((seq, seq)))
    elif direction == "rtl":
        allowed *= np.triu(np.ones((seq, seq)))
    probs_all = []
    i = 0
    while f"{scope}/encoder/layer_{i}/attention/self/query/kernel" in w:
        p = f"{scope}/encoder/layer_{i}"
        hidden = x.shape[-1]
        d = hidden // num_heads

        def heads(t):
            return t.reshape(batch, seq, num_heads, d).transpose(0, 2, 1, 3)

        q, k, v = (heads(dense(x, w, f"{p}/attention/self/{n}")) for n in
                   ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + (1.0 - allowed) * -10000.0
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        probs_all.append(probs)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = layer_norm(dense(ctx, w, f"{p}/attention/output/dense") + x, w,
                       f"{p}/attention/output/LayerNorm")
        inner = dense(x, w, f"{p}/intermediate/dense", gelu)
        x = layer_norm(dense(inner, w, f"{p}/output/dense") + x, w, f"{p}/output/LayerNorm")
        i += 1
    return x, probs_all


def mlm_logits(w, scope, hidden, table):
    """`get_token_logits`: dense→E with GELU, LayerNorm, tied output, `output_bias`."""
    h = layer_norm(dense(hidden, w, f"{scope}/dense", gelu), w, f"{scope}/LayerNorm")
    return h @ w[table].T + w[f"{scope}/output_bias"]


def disc_logits(w, hidden):
    h = dense(hidden, w, "discriminator_predictions/dense", gelu)
    return dense(h, w, "discriminator_predictions/dense_1")[..., 0]
