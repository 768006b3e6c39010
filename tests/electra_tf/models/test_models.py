"""The Keras networks: sizes, sharing, variants, masks, dropout, precision, serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import checkpoints, models as modeling
from electra_tf.config import PretrainingConfig
from electra_tf.models import attention, embeddings, heads, numerics, transformer
from tests.electra_tf.encoder_internals import encoder_internals

TINY = {"vocab_size": 101, "embedding_size": 16, "generator_hidden_size": 0.5,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 64}}


def features(batch=2, seq=10, vocab=101, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), np.int32)
    mask[1, seq - 3:] = 0
    ids = rng.integers(1, vocab, (batch, seq)).astype(np.int32) * mask
    return {"input_ids": ids, "input_mask": mask, "segment_ids": np.zeros_like(ids)}


# The original's counts: (hparams, trainable variables, trainable parameters).
COUNTS = [
    ({}, 402, 14_196_219),
    ({"generator_hidden_size": 1.0}, 402, 23_122_875),
    ({"model_size": "base"}, 400, 115_149_307),
    ({"model_size": "base", "generator_hidden_size": 0.33333}, 400, 119_386_427),
    ({"untied_generator_embeddings": True}, 405, 16_170_107),
    ({"untied_generator": False}, 208, 13_612_731),
    ({"electra_objective": False}, 204, 13_546_682),
    ({"uniform_generator": True}, 203, 13_549_057),
    ({"electric_objective": True, "electra_objective": False}, 596, 14_812_475),
]


@pytest.mark.parametrize("hparams,num_vars,num_params", COUNTS)
def test_parameter_counts_match_original(hparams, num_vars, num_params):
    models = modeling.build_models(PretrainingConfig("m", "d", **hparams))
    assert modeling.count_params(models) == (num_params, num_vars)


@pytest.mark.parametrize("size,num_vars,num_params", [
    ("small", 199, 13_483_008), ("base", 197, 108_891_648)])
def test_discriminator_encoder_counts(size, num_vars, num_params):
    models = modeling.build_models(PretrainingConfig("m", "d", model_size=size),
                                   generator=False, discriminator_head=False)
    assert modeling.count_params(models) == (num_params, num_vars)


def test_large_counts():
    """Large is slow to initialise, so both of its counts come from one build."""
    models = modeling.build_models(PretrainingConfig("m", "d", model_size="large"))
    assert modeling.count_params(models) == (354_655_291, 784)
    encoder_only = modeling.ElectraModels(models.config, None, None, models.encoder)
    assert modeling.count_params(encoder_only) == (334_092_288, 389)


def test_generator_shares_the_whole_embedding_block():
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY))
    gen, disc = models.generator.encoder, models.discriminator.encoder
    assert gen.embeddings is disc.embeddings
    assert gen.embeddings_project is not disc.embeddings_project
    # One variable each: a gradient step on the generator alone moves the shared tables.
    names = [v.path for v in models.generator.trainable_weights]
    assert len(names) == len(set(id(v) for v in models.generator.trainable_weights))
    shared = {id(v) for v in models.generator.trainable_weights} & {
        id(v) for v in models.discriminator.trainable_weights}
    assert len(shared) == 5  # word, position, token type, LayerNorm gamma and beta
    # The MLM output is tied to the word-embedding matrix.
    assert models.generator.head.word_embeddings is disc.embeddings.word_embeddings


def test_untied_and_one_network_variants():
    untied = modeling.build_models(PretrainingConfig(
        "m", "d", untied_generator_embeddings=True, **TINY))
    assert untied.generator.encoder.embeddings is not untied.encoder.embeddings
    assert untied.generator.encoder.embeddings_project is None
    assert untied.generator.encoder.embeddings.embedding_size == 16  # h_g
    one = modeling.build_models(PretrainingConfig("m", "d", untied_generator=False, **TINY))
    assert one.generator.encoder is one.discriminator.encoder
    bert = modeling.build_models(PretrainingConfig("m", "d", electra_objective=False, **TINY))
    assert bert.discriminator is None and bert.generator.encoder is bert.encoder
    uniform = modeling.build_models(PretrainingConfig("m", "d", uniform_generator=True, **TINY))
    assert uniform.generator is None and uniform.discriminator is not None


def test_padded_keys_are_ignored_and_padded_queries_computed():
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY))
    f = features()
    out = models.discriminator(f)["sequence_output"].numpy()
    changed = dict(f, input_ids=f["input_ids"].copy())
    changed["input_ids"][1, -3:] = 7  # only padded positions change
    again = models.discriminator(changed)["sequence_output"].numpy()
    np.testing.assert_allclose(out[1, :-3], again[1, :-3], atol=1e-6)
    assert np.abs(out[1, -3:]).sum() > 0  # padded queries are not zeroed (as the original)


@pytest.mark.parametrize("direction,visible", [("ltr", slice(0, 5)), ("rtl", slice(4, 10))])
def test_causal_towers_see_one_side(direction, visible):
    encoder = modeling.Encoder(101, 32, 2, 2, 64, embedding_size=16,
                               attention_direction=direction)
    f = features()
    base = encoder(f)["sequence_output"].numpy()[0, 4]
    for position in range(10):
        changed = dict(f, input_ids=f["input_ids"].copy())
        changed["input_ids"][0, position] = (changed["input_ids"][0, position] % 100) + 1
        moved = not np.allclose(encoder(changed)["sequence_output"].numpy()[0, 4], base,
                                atol=1e-6)
        assert moved == (visible.start <= position < visible.stop), position


def test_dropout_in_training_only():
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY))
    f = features()
    a = models.discriminator(f, training=False)["logits"]
    b = models.discriminator(f, training=False)["logits"]
    np.testing.assert_array_equal(a, b)
    c = models.discriminator(f, training=True)["logits"]
    assert not np.allclose(a, c)


def test_initializers_follow_the_original():
    models = modeling.build_models(PretrainingConfig("m", "d"))
    table = models.encoder.embeddings.word_embeddings.embeddings.numpy()
    assert np.abs(table).max() <= 0.04 + 1e-7  # truncated at 2 stddev
    assert 0.015 < table.std() < 0.019  # 0.02 * 0.88, the truncated-normal std
    layer = models.encoder.transformer_layers[0]
    assert np.abs(layer.attention.query.kernel.numpy()).max() <= 0.04 + 1e-7
    assert not np.any(layer.attention.query.bias.numpy())
    np.testing.assert_array_equal(layer.output_layer_norm.gamma.numpy(), 1.0)
    # Glorot-uniform where the original passes no initializer.
    project = models.encoder.embeddings_project.kernel.numpy()
    limit = np.sqrt(6.0 / (128 + 256))
    assert np.abs(project).max() <= limit and np.abs(project).max() > 0.04
    dense_1 = models.discriminator.head.dense_1.kernel.numpy()
    assert np.abs(dense_1).max() <= np.sqrt(6.0 / 257) and np.abs(dense_1).max() > 0.04
    assert not np.any(models.generator.head.output_bias.numpy())


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision(precision, tiny_hparams, tiny_prefix, tiny_loaded):
    config = PretrainingConfig("tiny", "d", precision=precision, **tiny_hparams)
    loaded = checkpoints.load_original(tiny_prefix, config)
    f = features(vocab=1024)
    disc = loaded.discriminator(f)
    gen = loaded.generator(f)
    compute = "bfloat16" if precision == "mixed_bfloat16" else "float16"
    assert disc["sequence_output"].dtype == compute
    assert disc["logits"].dtype == "float32" and gen["logits"].dtype == "float32"
    probs = encoder_internals(loaded.encoder)(f)["attention_probs"][0]
    assert probs.dtype == "float32"
    assert all(v.dtype == "float32" for v in loaded.discriminator.weights)
    # Within 4 unit roundoffs of the compute dtype (bfloat16 2^-8, float16 2^-11) of the
    # largest float32 logit: measured 1.6 (bfloat16: 0.017 of 2.3, generator) and 1.5
    # (float16: 0.0020) unit roundoffs at most.
    unit_roundoff = 2.0 ** -8 if precision == "mixed_bfloat16" else 2.0 ** -11
    for ours, float32 in ((disc["logits"], tiny_loaded.discriminator(f)["logits"]),
                          (gen["logits"], tiny_loaded.generator(f)["logits"])):
        atol = 4 * unit_roundoff * float(np.abs(float32).max())
        np.testing.assert_allclose(ours, float32, atol=atol, rtol=0)


def _round_trip(model, tmp_path, inputs):
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored) is type(model)
    for key, value in model(inputs).items():
        np.testing.assert_array_equal(restored(inputs)[key], value, err_msg=key)
    return restored


@pytest.mark.parametrize("hparams", [{}, {"electric_objective": True,
                                          "electra_objective": False}])
def test_keras_file_round_trip(hparams, tmp_path):
    models = modeling.build_models(PretrainingConfig("m", "d", **TINY, **hparams))
    f = features()
    _round_trip(models.generator, tmp_path, f)
    restored = _round_trip(models.discriminator, tmp_path, f)
    assert restored.encoder.embeddings_project is not None
    _round_trip(models.encoder, tmp_path, f)


@pytest.mark.parametrize("layer", [
    transformer.TransformerLayer(2, 64, name="t"),
    embeddings.Embeddings(50, 16, name="e"),
    heads.DiscriminatorHead(32, name="h"),
    attention.SelfAttention(2, name="a")])
def test_layer_configs_round_trip(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_activation_names():
    assert numerics.activation("linear") is None
    x = tf.constant([-1.0, 0.5, 2.0])
    exact = 0.5 * x * (1 + tf.math.erf(x / np.sqrt(2.0)))
    np.testing.assert_allclose(numerics.activation("gelu")(x), exact, atol=1e-7)
    with pytest.raises(ValueError, match="hidden_act"):
        numerics.activation("swish")


def test_float16_attention_scores_do_not_overflow():
    """Q·Kᵀ of 40s over 64 dimensions is 102400, past float16's 65504; scaled first it
    is 12800 and the attention stays finite."""
    layer = attention.SelfAttention(1, attention_probs_dropout_prob=0.0,
                                    dtype="mixed_float16")
    x = np.full((1, 3, 64), 40.0, "float32")
    layer.build(x.shape)
    for dense in (layer.query, layer.key, layer.value, layer.output_dense):
        dense.kernel.assign(np.eye(64, dtype="float32"))
    output, probs = layer(x, np.ones((1, 1, 3), "int32"))
    assert np.isfinite(np.asarray(output, "float32")).all()
    np.testing.assert_allclose(probs, np.full((1, 1, 3, 3), 1 / 3), atol=1e-6)
