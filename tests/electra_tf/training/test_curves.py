"""TensorBoard scalars written, read back (resumed runs merged) and drawn as a PNG."""

import matplotlib.image
import pytest
import tensorflow as tf

from electra_tf.training import curves, summaries

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_read_scalars_round_trips_write_scalars(tmp_path):
    logdir = str(tmp_path / "train")
    writer = tf.summary.create_file_writer(logdir)
    for step in (1, 2, 3):
        summaries.write_scalars(writer, step, {"loss": 4.0 - step, "learning_rate": step / 10})
    writer.close()
    scalars = curves.read_scalars(logdir)
    assert scalars["loss"] == ([1, 2, 3], [3.0, 2.0, 1.0])
    assert scalars["learning_rate"][0] == [1, 2, 3]
    assert scalars["learning_rate"][1] == pytest.approx([0.1, 0.2, 0.3])
    assert curves.read_scalars(str(tmp_path / "missing")) == {}


def test_a_resumed_run_merges_and_the_later_write_of_a_step_wins(tmp_path):
    logdir = str(tmp_path / "eval")
    for step, loss in [(1, 5.0), (2, 4.0), (3, 3.5)]:  # killed after step 3, saved at 2
        summaries.write_scalars(logdir, step, {"loss": loss})
    for step, loss in [(3, 3.0), (4, 2.0)]:  # the resumed run repeats step 3
        summaries.write_scalars(logdir, step, {"loss": loss})
    assert len(tf.io.gfile.listdir(logdir)) == 5  # one event file per call with a logdir
    assert curves.read_scalars(logdir) == {"loss": ([1, 2, 3, 4], [5.0, 4.0, 3.0, 2.0])}


def test_plot_learning_curves_writes_a_valid_png(tmp_path):
    train, missing = str(tmp_path / "train"), str(tmp_path / "eval")
    for step in range(1, 6):
        summaries.write_scalars(train, step, {"loss": 1.0 / step, "learning_rate": 1e-3})
    png = str(tmp_path / "out" / "learning_curves.png")
    panels = [("loss", [(train, "loss", "train"), (missing, "loss", "eval")]),
              ("discriminator AUC", [(missing, "disc_auc", "eval")]),  # "no data"
              ("learning rate", [(train, "learning_rate", "learning rate")])]
    assert curves.plot_learning_curves(png, panels, title="tiny") == png
    with open(png, "rb") as f:
        assert f.read(8) == PNG_MAGIC
    image = matplotlib.image.imread(png)
    height, width = image.shape[:2]
    assert 200 < height < 1000 and width > 2 * height  # three panels side by side
    assert image.std() > 0.01  # not blank
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["learning_curves.png"]
