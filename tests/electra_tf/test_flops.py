"""FLOPs counting reproduces the original `flops_computation.py` figures."""

import pytest

from electra_tf.flops import TransformerFlops, electra_train_flops


@pytest.mark.parametrize("flops,expected", [
    (electra_train_flops(256, 12, 64, 12, 128, 1e6, True, e=128, s=128), 1.294e18),
    (TransformerFlops(256, 12, s=128, e=128).train(128, 1e6, True), 9.41e17),
    (TransformerFlops(64, 12, s=128, e=128).train(128, 1e6), 3.52e17),
    (electra_train_flops(768, 12, 256, 12, 256, 766000, True, e=768), 6.425e19),
    (electra_train_flops(1024, 24, 256, 24, 2048, 400000, True, e=1024), 7.118e20),
    (electra_train_flops(1024, 24, 256, 24, 2048, 1750000, True, e=1024), 3.114e21),
    (TransformerFlops(256, 12, s=128, e=128).train(128, 1.45e6), 1.419e18),
    (TransformerFlops(768, 12).train(256, 1e6), 6.428e19),
    (TransformerFlops(1024, 24).train(256, 1e6), 1.917e20),
    (TransformerFlops(256, 12, s=128, e=128).infer(), 3.68e9),
    (TransformerFlops(256, 12, s=128, e=128, sparse_embed_lookup=True).infer(), 2.68e9),
    (TransformerFlops(768, 12, s=128).infer(), 2.86e10),
    (TransformerFlops(768, 12, s=512).infer(), 1.22e11),
    (TransformerFlops(1024, 24, s=128).infer(), 8.75e10),
    (TransformerFlops(1024, 24, s=512).infer(), 3.70e11),
])
def test_headline_numbers(flops, expected):
    digits = len(f"{expected:e}".split("e")[0].rstrip("0").replace(".", "")) - 1
    assert flops == pytest.approx(expected, rel=0.6 * 10 ** -digits)
