"""Electric scoring put to work: re-ranking n-best lists, against masked-LM pseudo-likelihood.

The demonstration of issue 15, in the order `run_rerank` runs it in a new `run-<n>`
directory:

1. `prepare_data`: the main job's generated corpus with a held-out share of the grammar's
   sentences removed, its vocabulary and pretraining records.
2. `train_model`, twice, as the main job pretrains (`HPARAMS`: the main job's but for the
   learning rate; same data and steps): Electric (`electric_objective`) and a BERT-style
   masked LM of the same size (`electra_objective: false`).
3. `nbest_lists`: each held-out sentence with corruptions of it (a word replaced by a word
   of the corpus, two words swapped, a word dropped), written to `nbest.tsv` (original
   first), the input format of `python -m electra_tf.score`.
4. `evaluate`: every list re-ranked by each of `METHODS` (Electric's −energy and its
   two-tower generator's cloze log q: one forward pass per text; the masked LM's
   pseudo-log-likelihood: one pass per token); top-1 accuracy against chance, and
   sentences/s timed in the same run. `rerank_results.json` holds the table.
"""

import dataclasses
import itertools
import os
import random
import time

from electra_common import files
from electra_quickstart import pipeline
from electra_tf.config import PretrainingConfig
from electra_tf.pretraining.trainer import Pretrainer
from electra_tf.scoring.scorer import Scorer
from pretrain_data import synthetic

# Both models: the main job's debug-size hparams, but at the main job's learning rate (1e-3)
# Electric's discriminator collapses to one constant energy for every token within a few
# hundred steps (measured top-1 accuracy 0.00; 0.14 at 5e-4; chance 0.25); at 3e-4 it
# learns (docs/rerank-demo.md).
HPARAMS = {**pipeline.HPARAMS, "learning_rate": 3e-4}
# The objective hparams of the two models.
OBJECTIVES = {"electric": {"electric_objective": True, "electra_objective": False},
              "mlm": {"electra_objective": False}}
# Each `Scorer` method compared: (the model it scores with, its title in the table).
# "cloze" (Electric's two-tower generator, log q) comes free with the Electric model.
METHODS = {"electric": ("electric", "Electric -energy (1 pass)"),
           "cloze": ("electric", "Electric cloze log q (1 pass)"),
           "mlm": ("mlm", "MLM pseudo-LL (1 pass per token)")}
RESULTS_FILE = "rerank_results.json"
NBEST_FILE = "nbest.tsv"


def grammar_sentences():
    """Every sentence the corpus grammar (`pretrain_data.synthetic`) can make, sorted."""
    return sorted(f"the {adjective} {noun} {verb} {obj} ."
                  for noun, (verbs, adjectives) in synthetic.NOUNS.items()
                  for adjective, verb, obj in itertools.product(adjectives, verbs,
                                                                synthetic.OBJECTS))


def split_held_out(share, seed=0):
    """A seeded share of `grammar_sentences()`, kept out of the pretraining corpus.

    Returns:
        The held-out sentences (at least one), in a seeded order.
    """
    if not 0 < share < 1:
        raise ValueError(f"held-out share must be between 0 and 1 (exclusive), got {share}")
    sentences = grammar_sentences()
    random.Random(seed).shuffle(sentences)
    return sentences[:max(1, round(share * len(sentences)))]


def prepare_data(data_dir, num_documents, max_seq_length, held_out, log=print):
    """`pipeline.prepare_data` (the main job's corpus, vocabulary and pretraining records in
    `data_dir`) with the held-out sentences left out of the corpus.

    Returns:
        The number of tokens in the vocabulary.
    """
    log(f"corpus: {len(held_out)} of the grammar's {len(grammar_sentences())} sentences "
        "held out")
    return pipeline.prepare_data(data_dir, num_documents, max_seq_length, log=log,
                                 held_out=held_out)


def train_model(data_dir, vocab_size, num_train_steps, method, hparams=None, log=print):
    """Pretrains the model of `method` ("electric" or "mlm") with `HPARAMS`.

    Args:
        data_dir: holds `vocab.txt` and `pretrain_tfrecords/`.
        vocab_size: the vocabulary's size.
        num_train_steps: pretraining steps.
        method: a key of `OBJECTIVES`; the model is `<data_dir>/models/<method>-debug`.
        hparams: overrides of `HPARAMS` (e.g. smaller sizes for tests).
        log: where the trainer's progress goes.
    Returns:
        The model directory.
    """
    if method not in OBJECTIVES:
        raise ValueError(f"method must be one of {', '.join(OBJECTIVES)}, got {method!r}")
    config = PretrainingConfig(f"{method}-debug", data_dir, vocab_size=vocab_size,
                               num_train_steps=num_train_steps,
                               **{**HPARAMS, **(hparams or {}), **OBJECTIVES[method]})
    Pretrainer(config, log=log).train()
    return config.model_dir


def replace_word(words, rng, vocabulary):
    """A random word replaced by a random word of `vocabulary`."""
    i = rng.randrange(len(words))
    return words[:i] + [rng.choice(vocabulary)] + words[i + 1:]


def swap_words(words, rng, vocabulary):
    """Two random positions swapped."""
    i, j = rng.sample(range(len(words)), 2)
    swapped = list(words)
    swapped[i], swapped[j] = words[j], words[i]
    return swapped


def drop_word(words, rng, vocabulary):
    """A random word dropped."""
    i = rng.randrange(len(words))
    return words[:i] + words[i + 1:]


CORRUPTIONS = {"replaced": replace_word, "swapped": swap_words, "dropped": drop_word}


@dataclasses.dataclass
class NBestList:
    """One n-best list: `candidates[0]` is the original, `kinds[i]` how candidate i was made
    ("original" or a key of `CORRUPTIONS`)."""

    candidates: list
    kinds: list


def nbest_list(sentence, rng, vocabulary, per_kind=1, attempts=50):
    """`sentence` and `per_kind` corruptions of each kind of `CORRUPTIONS`.

    A corruption that is the original, another sentence of the grammar (then it would be
    right as well) or already in the list is drawn again, at most `attempts` times.

    Args:
        sentence: the original, words separated by single spaces.
        rng: a `random.Random`.
        vocabulary: the words a replaced word is drawn from.
        per_kind: corruptions of each kind.
    Returns:
        An `NBestList`.
    """
    grammatical = set(grammar_sentences())
    candidates, kinds = [sentence], ["original"]
    for kind, corrupt in CORRUPTIONS.items():
        for _ in range(per_kind):
            for _ in range(attempts):
                text = " ".join(corrupt(sentence.split(), rng, vocabulary))
                if text not in grammatical and text not in candidates:
                    candidates.append(text)
                    kinds.append(kind)
                    break
    return NBestList(candidates, kinds)


def nbest_lists(sentences, num_lists, seed=0, per_kind=1):
    """`num_lists` n-best lists of `sentences` taken in turn (seeded, deterministic).

    Replacement words are drawn from the words of the grammar's sentences.
    """
    if not sentences:
        raise ValueError("nbest_lists: no sentences given")
    for name, value in (("num_lists", num_lists), ("per_kind", per_kind)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = random.Random(seed)
    vocabulary = sorted({word for s in grammar_sentences() for word in s.split()})
    return [nbest_list(sentences[i % len(sentences)], rng, vocabulary, per_kind)
            for i in range(num_lists)]


def write_nbest(path, lists):
    """One list per line, candidates tab-separated, the original first."""
    files.write_text(path, "".join("\t".join(nbest.candidates) + "\n" for nbest in lists))


def chance(lists):
    """Top-1 accuracy of a random ranking: the mean of 1 / list length."""
    return sum(1 / len(nbest.candidates) for nbest in lists) / len(lists)


def top1_accuracy(lists, scores):
    """The share of lists whose original scores strictly above every corruption (a tie is
    a miss, so a constant score earns nothing)."""
    return sum(s[0] > max(s[1:]) for s in scores) / len(lists)


def pairwise_wins(lists, scores):
    """{kind: share of the corruptions of that kind that the original outscores}."""
    wins = {kind: [] for kind in CORRUPTIONS}
    for nbest, s in zip(lists, scores):
        for kind, score in zip(nbest.kinds[1:], s[1:]):
            wins[kind].append(s[0] > score)
    return {kind: sum(w) / len(w) for kind, w in wins.items() if w}


def evaluate(scorer, lists):
    """Re-ranks `lists` with `scorer` twice and times the second pass: the first traces the
    functions and builds the kernels of every batch shape the lists make.

    Returns:
        {"top1_accuracy", "pairwise": `pairwise_wins`, "sentences_per_second"}.
    """
    groups = [nbest.candidates for nbest in lists]
    scorer.rerank(groups)
    start = time.perf_counter()
    rankings = scorer.rerank(groups)
    seconds = time.perf_counter() - start
    scores = [list(ranking.scores) for ranking in rankings]
    return {"top1_accuracy": top1_accuracy(lists, scores),
            "pairwise": pairwise_wins(lists, scores),
            "sentences_per_second": sum(map(len, groups)) / seconds}


def table(results):
    """The lines of the results table (accuracy, chance, sentences/s, speed ratio)."""
    kinds = list(CORRUPTIONS)
    lines = [f"{results['num_lists']} held-out n-best lists, {results['mean_candidates']:.2f} "
             f"candidates on average; chance (mean 1/length) {results['chance']:.3f}",
             f"{'method':<33}{'top-1':>7}{'sent/s':>9}{'original beats:':>17}"
             + "".join(f"{k:>10}" for k in kinds)]
    for method, (_, title) in METHODS.items():
        r = results[method]
        lines.append(f"{title:<33}{r['top1_accuracy']:>7.3f}{r['sentences_per_second']:>9.1f}"
                     f"{'':17}" + "".join(f"{r['pairwise'][k]:>10.3f}" for k in kinds))
    lines.append(f"Electric / MLM pseudo-LL sentences/s: {results['speedup']:.1f}x")
    return lines


def run_rerank(output_dir="demo_output", num_train_steps=800, num_documents=2000,
               num_lists=200, held_out_share=0.25, per_kind=1, hparams=None, log=print):
    """Runs the demonstration (see the module docstring) in a new `output_dir/run-<n>`.

    Args:
        output_dir: where the run directory is created.
        num_train_steps: pretraining steps of each model.
        num_documents: documents of the generated corpus.
        num_lists: n-best lists to re-rank.
        held_out_share: share of the grammar's sentences kept out of pretraining.
        per_kind: corruptions of each kind per list.
        hparams: overrides of `HPARAMS` for both models.
        log: where the progress and the table go.
    Returns:
        The results (as in `rerank_results.json`), with "run_dir" and "model_dirs".
    """
    data_dir = pipeline.new_run_dir(output_dir)
    log(f"Re-ranking demonstration in {data_dir}\n\n[1/4] data")
    held_out = split_held_out(held_out_share)
    max_seq_length = {**HPARAMS, **(hparams or {})}["max_seq_length"]
    vocab_size = prepare_data(data_dir, num_documents, max_seq_length, held_out, log)
    model_dirs = {}
    for step, method in enumerate(OBJECTIVES, 2):
        log(f"\n[{step}/4] pretraining the {method} model")
        model_dirs[method] = train_model(data_dir, vocab_size, num_train_steps, method,
                                         hparams, log)
    log("\n[4/4] re-ranking held-out n-best lists")
    lists = nbest_lists(held_out, num_lists, per_kind=per_kind)
    write_nbest(os.path.join(data_dir, NBEST_FILE), lists)
    results = {"num_lists": len(lists), "chance": chance(lists),
               "mean_candidates": sum(len(n.candidates) for n in lists) / len(lists),
               "num_train_steps": num_train_steps}
    for method, (model, _) in METHODS.items():
        results[method] = evaluate(Scorer(model_dirs[model], method=method), lists)
    results["speedup"] = (results["electric"]["sentences_per_second"]
                          / results["mlm"]["sentences_per_second"])
    files.write_json(os.path.join(data_dir, RESULTS_FILE), results)
    log("\n".join(["", *table(results), f"n-best lists: {os.path.join(data_dir, NBEST_FILE)}",
                   f"results: {os.path.join(data_dir, RESULTS_FILE)}"]))
    return {**results, "run_dir": data_dir, "model_dirs": model_dirs}
