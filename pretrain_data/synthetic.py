"""A small generated corpus with learnable regularities, for the main job and the tests.

Documents are sentences from a tiny grammar in which each noun has its own verbs and
adjectives, so a masked word is predictable from its context and a replaced one stands out.
No download: the corpus is made from a seed.
"""

import os
import random

from electra_common import files

NOUNS = {
    "license": (["grants", "covers", "permits"], ["free", "open", "written"]),
    "work": (["contains", "includes", "uses"], ["original", "derivative", "whole"]),
    "source": (["compiles", "builds", "runs"], ["modified", "complete", "public"]),
    "owner": (["signs", "submits", "owns"], ["legal", "sole", "named"]),
    "file": (["stores", "lists", "holds"], ["text", "binary", "notice"]),
    "contributor": (["sends", "grants", "writes"], ["each", "any", "other"]),
}
OBJECTS = ["the copyright", "a patent", "the notice", "this form", "the terms", "a copy"]


def sentence(rng):
    """One sentence: `the <adjective> <noun> <verb> <object> .` with noun-bound words."""
    noun = rng.choice(sorted(NOUNS))
    verbs, adjectives = NOUNS[noun]
    return f"the {rng.choice(adjectives)} {noun} {rng.choice(verbs)} {rng.choice(OBJECTS)} ."


def write_corpus(corpus_dir, num_documents=400, seed=0, num_files=4, exclude=()):
    """Writes `num_files` text files of blank-line-separated documents.

    Document d goes to file d % num_files. Each file is written atomically. Sentences in
    `exclude` are left out (held-out data), the others are drawn as without it; a document
    left empty is dropped.

    Returns:
        The list of files written.

    Raises:
        FileExistsError: if one of the files exists already (nothing is written).
    """
    rng = random.Random(seed)
    paths = [os.path.join(corpus_dir, f"synthetic-{i}.txt") for i in range(num_files)]
    for path in paths:
        if os.path.exists(path):
            raise FileExistsError(f"{path}: exists; choose an empty corpus directory")
    texts, exclude = [[] for _ in paths], set(exclude)
    for d in range(num_documents):
        lines = [sentence(rng) for _ in range(rng.randint(3, 12))]
        lines = [line for line in lines if line not in exclude]
        if lines:
            texts[d % num_files].append("\n".join(lines) + "\n\n")
    for path, text in zip(paths, texts):
        files.write_text(path, "".join(text), overwrite=False)
    return paths
