"""Generated, learnable GLUE-format data for end-to-end checks of fine-tuning.

Two tasks, written in the exact GLUE TSV layouts the readers in `finetune.tasks.glue` expect,
from common English words that are whole word pieces in small vocabularies (including
`tests/fixtures/vocab_tiny.txt`):
- SST (classification): random filler words plus one cue word; the label is 1 if the cue
  is a "positive" word, 0 if it is a "negative" one.
- STS (regression): two sentences of `STS_LENGTH` words; the score (0..5) is the number of
  words the second sentence shares with the first.
And SQuAD-format QA (`write_squad_data`): filler contexts in which the answer is the one
"place" word (`STS_POOL`), for SQuAD 1.1 and 2.0 (where some contexts have none).
And a classification task in the words of the pretraining corpus (`write_coherence_data`):
is a sentence of the `pretrain_data.synthetic` grammar as the grammar makes it (1), or has
one of its words been replaced by a word that cannot stand there (0)? Spotting replaced
words is what ELECTRA's discriminator learns, so pretraining on that corpus helps.
"""

import json
import os

import numpy as np

from electra_common import files
from pretrain_data import synthetic as grammar

FILLER = ("the of and in to was he is as for on with that it his by at from her she you had "
          "an were but be this are not my they one which or have him me").split()
POSITIVE = ("good great best love won free".split())
NEGATIVE = ("killed lost dark death died hard".split())
# STS draws from a small pool so that a tiny model sees every word often.
STS_POOL = ("city house river king water music school church film road book song "
            "car door army park street art island ground").split()
STS_LENGTH = 5
STS_HEADER = ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
              "sentence2\tscore")


def sst_rows(n, rng):
    """`n` (sentence, label) pairs: 3-8 filler words and one cue word at a random place."""
    rows = []
    for _ in range(n):
        label = int(rng.randint(2))
        words = list(rng.choice(FILLER, rng.randint(3, 9)))
        words.insert(rng.randint(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), label))
    return rows


def sts_rows(n, rng):
    """`n` (sentence1, sentence2, score) triples; score = number of shared words (0..5)."""
    rows = []
    for _ in range(n):
        words = rng.choice(STS_POOL, 2 * STS_LENGTH, replace=False)
        first, others = list(words[:STS_LENGTH]), list(words[STS_LENGTH:])
        shared = int(rng.randint(STS_LENGTH + 1))
        second = list(rng.choice(first, shared, replace=False)) + others[:STS_LENGTH - shared]
        rng.shuffle(second)
        rows.append((" ".join(first), " ".join(second), float(shared)))
    return rows


def coherence_rows(n, rng):
    """`n` (sentence, label) pairs of the `pretrain_data.synthetic` grammar: label 1 is a
    sentence as the grammar makes it, 0 the same with its adjective, noun or verb replaced
    by another word of the corpus that cannot stand there (a replaced token, as ELECTRA's
    discriminator sees them)."""
    roles = {1: {w for _, adjectives in grammar.NOUNS.values() for w in adjectives},
             2: set(grammar.NOUNS),
             3: {w for verbs, _ in grammar.NOUNS.values() for w in verbs}}
    words_of_corpus = set().union(*roles.values(), (o.split()[-1] for o in grammar.OBJECTS))
    rows = []
    for _ in range(n):
        words = grammar.sentence(rng).split()  # the <adjective> <noun> <verb> <object> .
        label = int(rng.randint(2))
        if not label:
            position = 1 + int(rng.randint(3))
            words[position] = rng.choice(sorted(words_of_corpus - roles[position]))
        rows.append((" ".join(words), label))
    return rows


def _write(path, lines):
    files.write_text(path, "\n".join(lines) + "\n")


def write_sst(task_dir, sizes, rng, make_rows=sst_rows):
    """SST-2 layout: train/dev `sentence\\tlabel`, test `index\\tsentence`, with headers;
    the rows from `make_rows(n, rng)`."""
    for split, n in sizes.items():
        rows = make_rows(n, rng)
        if split == "test":
            lines = ["index\tsentence"] + [f"{i}\t{s}" for i, (s, _) in enumerate(rows)]
        else:
            lines = ["sentence\tlabel"] + [f"{s}\t{label}" for s, label in rows]
        _write(os.path.join(task_dir, split + ".tsv"), lines)


def write_sts(task_dir, sizes, rng):
    """STS-B layout: 10 columns with the score last (test: 9, no score), with headers."""
    for split, n in sizes.items():
        lines = [STS_HEADER if split != "test" else STS_HEADER.rsplit("\t", 1)[0]]
        for i, (a, b, score) in enumerate(sts_rows(n, rng)):
            prefix = f"{i}\tmain-captions\tsynthetic\t2024\t{i}\tnone\tnone\t{a}\t{b}"
            lines.append(prefix if split == "test" else f"{prefix}\t{score:.3f}")
        _write(os.path.join(task_dir, split + ".tsv"), lines)


WRITERS = {"sst": write_sst, "sts": write_sts}


def write_glue_data(data_dir, task_names=("sst", "sts"), train=1000, dev=200, test=50, seed=0):
    """Writes `<data_dir>/finetuning_data/<task>/{train,dev,test}.tsv` for each task.

    Args:
        data_dir: the fine-tuning `data_dir`.
        task_names: any of "sst", "sts".
        train, dev, test: examples per split.
        seed: makes the data reproducible.
    Returns:
        {task: its directory}.
    """
    rng = np.random.RandomState(seed)
    dirs = {}
    for task in task_names:
        dirs[task] = os.path.join(data_dir, "finetuning_data", task)
        WRITERS[task](dirs[task], {"train": train, "dev": dev, "test": test}, rng)
    return dirs


def write_coherence_data(data_dir, train=1000, dev=200, test=50, seed=0):
    """Writes the coherence task (see `coherence_rows`) in the SST-2 layout, as the "sst"
    task: `<data_dir>/finetuning_data/sst/{train,dev,test}.tsv`.

    Args:
        data_dir: the fine-tuning `data_dir`.
        train, dev, test: examples per split.
        seed: makes the data reproducible.
    Returns:
        The task's directory.
    """
    task_dir = os.path.join(data_dir, "finetuning_data", "sst")
    write_sst(task_dir, {"train": train, "dev": dev, "test": test},
              np.random.RandomState(seed), coherence_rows)
    return task_dir


QA_QUESTIONS = ("where is it ?", "which place is named ?", "what is the place ?")


def squad_paragraph(rng, qid, min_words, max_words, impossible):
    """One SQuAD paragraph: filler words with one place word (none if `impossible`), and
    its question, the place as the answer with its character offset."""
    words = list(rng.choice(FILLER, rng.randint(min_words, max_words + 1)))
    qa = {"id": qid, "question": str(rng.choice(QA_QUESTIONS))}
    if impossible:
        qa.update(answers=[], is_impossible=True)
    else:
        answer = str(rng.choice(STS_POOL))
        k = int(rng.randint(len(words) + 1))
        words.insert(k, answer)
        start = len(" ".join(words[:k])) + (1 if k else 0)
        qa.update(answers=[{"text": answer, "answer_start": start}], is_impossible=False)
    return {"context": " ".join(words), "qas": [qa]}


def write_squad_data(data_dir, task="squad", train=1000, dev=200, test=0, seed=0,
                     unanswerable=0.3, min_words=10, max_words=60):
    """Writes `<data_dir>/finetuning_data/<task>/{train,dev[,test]}.json` in SQuAD format.

    Args:
        data_dir: the fine-tuning `data_dir`.
        task: "squad" (2.0: a share `unanswerable` of questions has no answer) or "squadv1"
            (every question has one).
        train, dev, test: questions per split (no test file if `test` is 0).
        seed: makes the data reproducible.
        min_words, max_words: context length in words (long ones need several windows).
    Returns:
        The task's directory.
    """
    rng = np.random.RandomState(seed)
    task_dir = os.path.join(data_dir, "finetuning_data", task)
    share = unanswerable if task == "squad" else 0.0
    for split, n in (("train", train), ("dev", dev), ("test", test)):
        if not n:
            continue
        paragraphs = [squad_paragraph(rng, f"{split}-{i}", min_words, max_words,
                                      rng.rand() < share) for i in range(n)]
        _write(os.path.join(task_dir, split + ".json"), [json.dumps(
            {"version": "v2.0" if task == "squad" else "1.1",
             "data": [{"title": "synthetic", "paragraphs": paragraphs}]})])
    return task_dir
