"""Small corpora for the builder tests, and a reader of the shards they become."""

import io
import os
import pathlib
import random
import tarfile

import tensorflow as tf

from pretrain_data import examples

FIXTURES = pathlib.Path(__file__).parent.parent / "fixtures"
VOCAB = str(FIXTURES / "vocab_tiny.txt")
WORDS = ["the", "an", "re", "paul", "a", "b", "c", "cafe", "naive", "hello", "world", "x"]


def make_corpus(directory, n_files=3, n_docs=8, seed=0):
    """Files of blank-line separated documents of random words of the tiny vocab."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(n_files):
        lines = []
        for _ in range(n_docs):
            for _ in range(rng.randint(1, 12)):
                lines.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))))
            lines.append("")
        (directory / ("part-%02d.txt" % f)).write_text("\n".join(lines), encoding="utf-8")
    return directory


def make_openwebtext(data_dir):
    """`data_dir/openwebtext/` with 2 xz tar archives of 3 one-document files each, and
    `data_dir/vocab.txt`."""
    owt_dir = data_dir / "openwebtext"
    owt_dir.mkdir(parents=True)
    (data_dir / "vocab.txt").write_bytes(pathlib.Path(VOCAB).read_bytes())
    for a in range(2):
        with tarfile.open(owt_dir / ("urlsf_subset%02d.xz" % a), "w:xz") as tar:
            for d in range(3):
                data = ("the an\n\nre paul %d %d\n" % (a, d)).encode()
                info = tarfile.TarInfo("%d-%d.txt" % (a, d))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return data_dir


def read_records(output_dir):
    """Every record of the shards of `output_dir`, shard by shard, as tuples of features."""
    records = []
    for path in sorted(tf.io.gfile.glob(os.path.join(output_dir, "pretrain_data.tfrecord*"))):
        for raw in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(raw.numpy())
            records.append(tuple(tuple(example.features.feature[name].int64_list.value)
                                 for name in examples.FEATURE_NAMES))
    return records
