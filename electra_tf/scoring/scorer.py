"""Scores and re-ranks raw texts with a model directory: `Scorer(model_dir).score(texts)`.

Texts are featurised exactly as training and serving featurise them: the training
tokenizer (`FullTokenizer`, lower-casing per the config) and `[CLS] text [SEP]`, by the
serving `TextEncoder` itself. A text longer than `max_seq_length − 2` WordPieces keeps its
first ones, as in training; its `TextScore.truncated` is True and a warning says so.
"""

import dataclasses
import json
import sys
import warnings

import numpy as np
import tensorflow as tf

from electra_common import files
from electra_tf import checkpoints
from electra_tf.models import TwoTowerGenerator
from electra_tf.scoring.energy import electric_scores
from electra_tf.scoring.pseudo_likelihood import cloze_scores, mlm_scores
from electra_tf.serving.export import find_vocab
from electra_tf.serving.text_encoder import TextEncoder
from electra_tf.training.progress import Progress

# How each method scores, and its cost per text of n WordPieces.
METHODS = {"electric": "Electric's −energy from the discriminator, one pass",
           "mlm": "the generator's masked-LM pseudo-log-likelihood, n passes",
           "cloze": "Electric's two-tower generator's log q, one pass"}


@dataclasses.dataclass(frozen=True)
class TextScore:
    """The score of one text.

    Attributes:
        text: the text as given.
        score: the sum of `token_scores` (higher = more likely).
        tokens: the WordPieces scored, in order ([CLS] and [SEP] are not).
        token_scores: each one's (unnormalised, for Electric) log-probability.
        truncated: the text was longer than `max_seq_length − 2` WordPieces; only the
            first ones are scored.
    """

    text: str
    score: float
    tokens: list
    token_scores: list
    truncated: bool = False


@dataclasses.dataclass(frozen=True)
class Ranking:
    """The candidates of one n-best group, ranked by score.

    Attributes:
        candidates: the texts, in the order given.
        scores: their scores, in that order.
        order: indices into `candidates`, best (highest score) first; ties keep their order.
        truncated: indices of the candidates longer than `max_seq_length − 2` WordPieces
            (see `TextScore.truncated`).
    """

    candidates: list
    scores: list
    order: list
    truncated: list = dataclasses.field(default_factory=list)

    @property
    def best(self):
        """The best candidate."""
        return self.candidates[self.order[0]]


def objective_name(config):
    """The pretraining objective of a `PretrainingConfig`, in words."""
    if config.electric_objective:
        return "Electric"
    return "ELECTRA" if config.electra_objective else "the BERT-style masked LM"


def scoring_network(loaded, method, model_dir):
    """The network of `loaded` (`checkpoints.OriginalCheckpoint`) that `method` scores with.

    Raises:
        ValueError: the model directory cannot score with `method`; the message says what
            it was trained with and which method to use.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    config, generator = loaded.config, loaded.generator
    trained = f"{model_dir} was trained with {objective_name(config)}"
    if method == "electric":
        if not config.electric_objective:
            advice = ("use method 'mlm' (its generator's pseudo-log-likelihood)"
                      if generator is not None else "and it has no generator for method 'mlm'")
            raise ValueError(f"{trained} (electric_objective is false): its discriminator's "
                             f"logits are replaced-token logits, not energies; {advice}")
        if loaded.discriminator is None:
            raise ValueError(f"{model_dir} has no discriminator head (components.json); "
                             "use method 'cloze' or 'mlm'")
        return loaded.discriminator
    if generator is None:
        raise ValueError(f"{trained} and has no generator (a uniform generator or a "
                         "discriminator-only directory): method {method!r} needs one"
                         + ("; use method 'electric'" if config.electric_objective else ""))
    if method == "cloze" and not isinstance(generator, TwoTowerGenerator):
        raise ValueError(f"{trained}: method 'cloze' needs Electric's two-tower generator; "
                         "use method 'mlm' (its masked-LM pseudo-log-likelihood)")
    return generator


def ranking(text_scores):
    """The `Ranking` of one group's `TextScore`s."""
    scores = [s.score for s in text_scores]
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep order
    return Ranking([s.text for s in text_scores], scores, order,
                   [i for i, s in enumerate(text_scores) if s.truncated])


class Scorer:
    """Scores raw texts with a model directory, and re-ranks n-best lists.

    Args:
        model_dir: a pretraining model directory (`config.json` + checkpoints).
        method: "electric" (Electric-trained directories: one discriminator pass), "mlm"
            (any directory with a generator: one pass per WordPiece) or "cloze" (Electric's
            two-tower generator: one pass, the same numbers as "mlm" on it).
        vocab_file: default: the model directory's (as `export_saved_model` finds it).
        batch_size: texts per featurisation batch, and sequences per forward pass (for
            "mlm", masked copies).

    Example:
    ```python
    scorer = Scorer("data/models/electric")
    scorer.score(["the cat sat on the mat ."])[0].score
    scorer.rerank([["the cat sat .", "the cat sit ."]])[0].best
    ```
    """

    def __init__(self, model_dir, method="electric", vocab_file=None, batch_size=32):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        loaded = checkpoints.load_model_dir(model_dir)
        network = scoring_network(loaded, method, model_dir)
        config = loaded.config
        self.method, self.batch_size = method, batch_size
        self.max_seq_length = config.max_seq_length
        self.text_encoder = TextEncoder(vocab_file or find_vocab(model_dir, config),
                                        config.max_seq_length, config.do_lower_case,
                                        vocab_size=config.vocab_size)
        self._featurise = tf.function(self._featurise_texts, input_signature=[
            tf.TensorSpec([None], tf.string)])
        specs = {name: tf.TensorSpec([None, None], tf.int32)
                 for name in ("input_ids", "input_mask", "segment_ids")}
        self._scores = tf.function(self._scores_fn(network), input_signature=[specs])

    def _scores_fn(self, network):
        """features → scores dict, for this scorer's method."""
        ids = self.text_encoder
        if self.method == "electric":
            return lambda features: electric_scores(network, features, ids.cls_id, ids.sep_id)
        if self.method == "cloze":
            return lambda features: cloze_scores(network, features, ids.cls_id, ids.sep_id)
        return lambda features: mlm_scores(network, features, ids.mask_id, ids.cls_id,
                                           ids.sep_id, self.batch_size)

    def _featurise_texts(self, texts):
        """texts [B] → (features, WordPieces of each text before truncation [B])."""
        pieces = self.text_encoder.tokenizer.tokenize_ids(texts)
        return self.text_encoder.assemble(pieces), pieces.row_lengths()

    def score(self, texts, on_batch=None):
        """Scores texts.

        Args:
            texts: a list of strings.
            on_batch: optional; called with (texts done, total) after each batch.
        Returns:
            A list of `TextScore`, in the order of `texts`.
        Raises:
            ValueError: `texts` is not a list of strings, or a text has no WordPiece.
        """
        return self._score_all(_checked_texts(texts, "texts"), on_batch,
                               lambda i: f"text {i}")

    def rerank(self, groups, on_batch=None):
        """Ranks the candidates of each n-best group by score.

        The candidates of all groups are scored together, `batch_size` at a time.

        Args:
            groups: a list of lists of strings (each group: one or more candidates).
            on_batch: as `score`, counting candidates.
        Returns:
            A list of `Ranking`, one per group.
        """
        if isinstance(groups, (str, bytes)):
            raise ValueError("groups must be a list of lists of candidate texts, got a string")
        groups = [_checked_texts(group, f"group {g}") for g, group in enumerate(groups)]
        for g, group in enumerate(groups):
            if not group:
                raise ValueError(f"group {g} has no candidate")
        where = [(g, c) for g, group in enumerate(groups) for c in range(len(group))]
        scored = self._score_all([text for group in groups for text in group], on_batch,
                                 lambda i: "group {}, candidate {}".format(*where[i]))
        rankings, start = [], 0
        for group in groups:
            rankings.append(ranking(scored[start:start + len(group)]))
            start += len(group)
        return rankings

    def _score_all(self, texts, on_batch, name):
        """`TextScore`s of all texts, batch by batch; `name(i)` names text i in errors."""
        results = []
        for start in range(0, len(texts), self.batch_size):
            results += self._score_batch(texts[start:start + self.batch_size], start, name)
            if on_batch is not None:
                on_batch(len(results), len(texts))
        truncated = sum(r.truncated for r in results)
        if truncated:
            kept = self.max_seq_length - 2
            warnings.warn(f"{truncated} of {len(texts)} texts are longer than {kept} "
                          f"WordPieces (max_seq_length {self.max_seq_length} minus [CLS] and "
                          f"[SEP]): as in training, only their first {kept} are scored",
                          stacklevel=3)
        return results

    def _score_batch(self, texts, first, name):
        features, lengths = self._featurise(tf.constant([t.encode("utf-8") for t in texts]))
        lengths = lengths.numpy()
        for i in np.flatnonzero(lengths == 0):
            raise ValueError(f"{name(first + i)} ({texts[i]!r}) has no WordPiece to score "
                             "(empty, or only spaces and control characters)")
        out = {k: v.numpy() for k, v in self._scores(features).items()}
        ids = features["input_ids"].numpy()
        vocab = self.text_encoder.tokenizer.inv_vocab
        kept = self.max_seq_length - 2
        return [TextScore(text, float(out["score"][i]),
                          [vocab[t] for t in ids[i][out["scored"][i]]],
                          out["token_scores"][i][out["scored"][i]].tolist(),
                          bool(lengths[i] > kept))
                for i, text in enumerate(texts)]


def _checked_texts(texts, name):
    """`texts` (`name` in errors) as a list, or a ValueError if it is not a list of str."""
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"{name} must be a list of strings, got one string; pass [text]")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}] must be a str, got {type(text).__name__}")
    return texts


def read_input(path):
    """The texts, or n-best groups, of an input file (UTF-8).

    One text per line; if any line has a tab, every line is one group of tab-separated
    candidates (a line without a tab: a group of one).

    Returns:
        (a list of texts, or of lists of candidates; whether they are groups).
    Raises:
        ValueError: the file is empty, or a line or a candidate is empty (named as
            `path:line`).
    """
    with files.open_file(path) as f:
        lines = f.read().split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line
    lines = [line.removesuffix("\r") for line in lines]
    if not lines:
        raise ValueError(f"{path}: empty; expected one text, or one tab-separated group, "
                         "per line")
    grouped = any("\t" in line for line in lines)
    for number, line in enumerate(lines, 1):
        for field in line.split("\t") if grouped else [line]:
            if not field.strip():
                raise ValueError(f"{path}:{number}: empty {'candidate' if grouped else 'line'}"
                                 "; expected one text, or one tab-separated group, per line")
    return ([line.split("\t") for line in lines] if grouped else lines), grouped


def to_record(number, result):
    """The JSON object of input line `number`: a `TextScore` or a `Ranking`."""
    if isinstance(result, TextScore):
        return {"line": number, **dataclasses.asdict(result)}
    return {"line": number, "best": result.best, **dataclasses.asdict(result)}


def score_file(model_dir, input_path, output_path=None, method="electric", vocab_file=None,
               batch_size=32, log=None):
    """Scores (or re-ranks) every line of a file; writes one JSON object per line.

    Args:
        model_dir, method, vocab_file, batch_size: as `Scorer`.
        input_path: see `read_input`.
        output_path: the JSON-lines file to write (replaced atomically); None: stdout.
        log: a function taking a progress line; default: print to stderr. Inputs of more
            than one batch show progress (a bar when writing to a file from a terminal).
    Returns:
        The `TextScore`s, or for groups the `Ranking`s, one per line.
    """
    lines, grouped = read_input(input_path)
    scorer = Scorer(model_dir, method, vocab_file, batch_size)
    total = sum(len(g) for g in lines) if grouped else len(lines)
    on_batch = _progress(total, batch_size, output_path is not None,
                         log or (lambda line: print(line, file=sys.stderr)))
    results = (scorer.rerank if grouped else scorer.score)(lines, on_batch)
    text = "".join(json.dumps(to_record(number, result), ensure_ascii=False) + "\n"
                   for number, result in enumerate(results, 1))
    if output_path is None:
        sys.stdout.write(text)
    else:
        files.write_text(output_path, text)
    return results


def _progress(total, batch_size, bar, log):
    """An `on_batch` reporting through `training.progress.Progress`, or None for one batch."""
    batches = -(-total // batch_size)
    if batches <= 1:
        return None
    report = Progress(batches, batch_size, every=max(1, batches // 10), bar=bar, log=log)
    return lambda done, _: report.update(-(-done // batch_size), {"texts": done})
