"""Analytic FLOPs of transformer training and inference, counted as the original does.

A transcription of the original `flops_computation.py`, for the throughput
benchmarks' model-FLOPs utilisation: a matmul is 2·m·n, the backward pass costs the same as
the forward pass, and small ops get the original's per-element constants (including its
attention-output LayerNorm term without the ×H).
"""

import dataclasses

DROPOUT_FLOPS = 4
LAYER_NORM_FLOPS = 5
ACTIVATION_FLOPS = 8
SOFTMAX_FLOPS = 5


@dataclasses.dataclass
class TransformerFlops:
    """FLOPs of one transformer (the original `TransformerHparams`).

    Args:
        h: hidden size; l: layers; s: sequence length; v: vocabulary size; e: embedding size
        (default h); i: FFN size (default 4h); heads: default max(1, h // 64).
        output_frac: share of tokens the MLM output layer runs on (20/128 = 80/512).
        sparse_embed_lookup: count the input lookup as a gather instead of a one-hot matmul.
    """

    h: int
    l: int  # noqa: E741 (the original's name)
    s: int = 512
    v: int = 30522
    e: int | None = None
    i: int | None = None
    heads: int | None = None
    output_frac: float = 0.15625
    sparse_embed_lookup: bool = False

    def __post_init__(self):
        self.e = self.h if self.e is None else self.e
        self.i = 4 * self.h if self.i is None else self.i
        self.heads = max(self.h // 64, 1) if self.heads is None else self.heads
        self.kqv = self.h

    def block(self):
        """FLOPs of one transformer layer over the whole sequence."""
        h, s, i, kqv, heads = self.h, self.s, self.i, self.kqv, self.heads
        per_token = (3 * 2 * h * kqv + 3 * kqv + 2 * kqv * s + SOFTMAX_FLOPS * s * heads
                     + DROPOUT_FLOPS * s * heads + s * heads + 2 * h * s + 2 * h * h + h
                     + DROPOUT_FLOPS * h + h + LAYER_NORM_FLOPS
                     + 2 * h * i + ACTIVATION_FLOPS * i + i + 2 * h * i + h
                     + DROPOUT_FLOPS * h + h + LAYER_NORM_FLOPS * h)
        return per_token * s

    def embedding(self, output=False):
        """The input embedding block, or (`output`) the MLM output layer."""
        e, h, v, s = self.e, self.h, self.v, self.s
        flops = 0
        if output or not self.sparse_embed_lookup:
            flops += 2 * e * v
        if not output:
            flops += 2 * e * (s + 2) + 2 * e + LAYER_NORM_FLOPS * e + DROPOUT_FLOPS * e
        if e != h or output:
            flops += 2 * h * e + (e if output else h)
            if output:
                flops += (ACTIVATION_FLOPS * e + LAYER_NORM_FLOPS * e + SOFTMAX_FLOPS * v
                          + 2 * v)
                return self.output_frac * flops * s
        return flops * s

    def binary_classifier(self):
        """The discriminator head on every token."""
        return (2 * self.h * self.h + self.h + ACTIVATION_FLOPS * self.h + 2 * self.h) * self.s

    def forward(self, discriminator=False):
        """One sequence's forward FLOPs, with the discriminator or the MLM head."""
        head = self.binary_classifier() if discriminator else self.embedding(output=True)
        return self.l * self.block() + self.embedding() + head

    def train(self, batch_size, steps, discriminator=False):
        """Training FLOPs: forward and an equal backward, per sequence, batch and step."""
        return 2 * batch_size * steps * self.forward(discriminator)

    def infer(self):
        """Inference FLOPs of one sequence with the binary classification head."""
        return self.forward(discriminator=True)


def electra_train_flops(h_d, l_d, h_g, l_g, batch_size, steps, tied_embeddings, e=None, s=512,
                        v=30522, output_frac=0.15625):
    """Discriminator plus generator training FLOPs (`get_electra_train_flops`)."""
    disc = TransformerFlops(h_d, l_d, s=s, v=v, e=e, output_frac=output_frac)
    gen = TransformerFlops(h_g, l_g, s=s, v=v, e=e if tied_embeddings else None,
                           output_frac=output_frac)
    return (disc.train(batch_size, steps, discriminator=True)
            + gen.train(batch_size, steps))
