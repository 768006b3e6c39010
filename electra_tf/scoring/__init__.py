"""Text scores from pretrained models, for re-ranking (docs/scoring.md).

- `energy`: Electric's one-pass score, −energy of every token (`electric_scores`).
- `pseudo_likelihood`: the masked-LM pseudo-log-likelihood, one pass per token
  (`mlm_scores`), and Electric's one-pass cloze log q (`cloze_scores`).
- `scorer`: raw text in, scores and rankings out, from a model directory (`Scorer`).

Import the modules themselves: `electra_tf.serving` builds on `energy`, and `scorer` on
`electra_tf.serving`.
"""
