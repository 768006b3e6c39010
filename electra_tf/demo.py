"""The main job on a built-in default: build ELECTRA-Small, load an original checkpoint, report.

    python -m electra_tf.demo [--checkpoint PREFIX --hparams JSON --vocab-file FILE --text T]

It builds ELECTRA-Small's generator and discriminator (code defaults), prints their sizes
and parameter counts, then loads an original-format TF1 checkpoint (by default the tiny
one bundled in `tests/fixtures/`, written by the original code) and prints, for a sample
sentence, the discriminator's probability that each token was replaced, before and after
replacing one token. The bundled weights are random: the numbers show the plumbing, not
language understanding.
"""

import os
import sys
import time

import numpy as np
from absl import flags

from electra_tf import checkpoints, cli, modeling
from electra_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
flags.DEFINE_string("checkpoint", os.path.join(REPO, "tests/fixtures/original-tiny/ckpt/model.ckpt"),
                    "Original checkpoint prefix (or directory) to load.")
flags.DEFINE_string("hparams", os.path.join(REPO, "configs/original_tiny.json"),
                    "The checkpoint's hyperparameters (JSON or .json path); '' infers them.")
flags.DEFINE_string("vocab-file", os.path.join(REPO, "tests/fixtures/vocab_tiny.txt"),
                    "WordPiece vocabulary of the checkpoint.")
flags.DEFINE_string("text", "the licensor shall mean the copyright owner",
                    "Sample sentence.")
FLAGS = flags.FLAGS


def describe(models):
    """Lines describing the networks' sizes."""
    config = models.config
    bert = config_lib.get_bert_config(config)
    emb = config_lib.embedding_size(config, bert)
    lines = [f"  discriminator: H={bert.hidden_size} L={bert.num_hidden_layers} "
             f"heads={bert.num_attention_heads} FFN={bert.intermediate_size} E={emb}"
             + (f" (electra/embeddings_project {emb}->{bert.hidden_size})"
                if emb != bert.hidden_size else "")]
    if models.generator is not None and models.generator.encoder is not models.encoder:
        gen = config_lib.get_generator_config(config, bert)
        project = models.generator.encoder.embeddings_project
        lines.append(f"  generator:     H={gen.hidden_size} L={gen.num_hidden_layers} "
                     f"heads={gen.num_attention_heads} FFN={gen.intermediate_size}, shares "
                     "electra/embeddings" + (f", own projection {emb}->{gen.hidden_size}"
                                             if project is not None else ""))
    total, num_vars = modeling.count_params(models)
    encoder_only = modeling.ElectraModels(config, None, None, models.encoder)
    lines.append(f"  trainable parameters: {total:,} in {num_vars} variables "
                 f"(discriminator encoder: {modeling.count_params(encoder_only)[0]:,})")
    return lines


def replaced_probabilities(loaded, tokenizer, text, replace_at=None, replacement=None):
    """Tokens and the discriminator's p(replaced) for `[CLS] text [SEP]`."""
    tokens = ["[CLS]"] + tokenizer.tokenize(text) + ["[SEP]"]
    if replace_at is not None:
        tokens[replace_at] = replacement
    ids = np.array([tokenizer.convert_tokens_to_ids(tokens)], np.int32)
    features = {"input_ids": ids, "input_mask": np.ones_like(ids),
                "segment_ids": np.zeros_like(ids)}
    logits = loaded.discriminator(features)["logits"][0].numpy()
    return tokens, 1.0 / (1.0 + np.exp(-logits))


def main(argv):
    del argv
    from pretrain_data.tokenization import FullTokenizer

    print("ELECTRA-Small, code defaults (configs/small.json):")
    start = time.time()
    small = modeling.build_models(config_lib.PretrainingConfig("electra-small", "."))
    print("\n".join(describe(small)) + f"\n  built in {time.time() - start:.1f} s")
    plus = modeling.build_models(config_lib.PretrainingConfig(
        "electra-small++", ".", generator_hidden_size=1.0))
    print(f"ELECTRA-Small++ as released (generator 1.0): "
          f"{modeling.count_params(plus)[0]:,} parameters\n")
    del small, plus

    hparams = config_lib.parse_hparams(FLAGS.hparams)
    config = config_lib.PretrainingConfig("demo", ".", **hparams) if hparams else None
    loaded = checkpoints.load_original(FLAGS.checkpoint, config)
    print(f"Original checkpoint {checkpoints.resolve_checkpoint(FLAGS.checkpoint)} "
          f"(global_step {loaded.global_step}, Adam slots for "
          f"{len(loaded.optimizer_slots)} variables):")
    print("\n".join(describe(loaded.models)))
    if loaded.discriminator is None:
        sys.exit("error: the checkpoint has no discriminator head")

    tokenizer = FullTokenizer(FLAGS["vocab-file"].value)
    tokens, probs = replaced_probabilities(loaded, tokenizer, FLAGS.text)
    position = min(3, len(tokens) - 2)
    swapped = "form" if tokens[position] != "form" else "work"
    new_tokens, new_probs = replaced_probabilities(loaded, tokenizer, FLAGS.text, position,
                                                   swapped)
    print(f"\nDiscriminator p(replaced) for {FLAGS.text!r}, then with token {position} "
          f"replaced by {swapped!r} (random weights: plumbing, not meaning):")
    print(f"  {'token':>12} {'p':>7}   {'token':>12} {'p':>7}")
    for a, p, b, q in zip(tokens, probs, new_tokens, new_probs):
        print(f"  {a:>12} {p:7.4f}   {b:>12} {q:7.4f}" + ("  <- replaced" if a != b else ""))


if __name__ == "__main__":
    cli.run(main)
