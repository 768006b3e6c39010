"""Learning curves: the scalars of TensorBoard event files, read back and drawn as a PNG.

`read_scalars` reads what `summaries` wrote; `plot_learning_curves` draws panels of them
with matplotlib (imported only when a picture is drawn).
"""

import io
import os

import tensorflow as tf

from electra_common import files


def _event_files(logdir):
    if not files.exists(logdir):
        return []
    return [os.path.join(logdir, name) for name in sorted(tf.io.gfile.listdir(logdir))
            if name.startswith("events.out.tfevents.")]


def _value(value):
    """The float a scalar summary value holds (TF2 tensor or TF1 `simple_value`)."""
    if value.HasField("tensor"):
        return float(tf.make_ndarray(value.tensor))
    return float(value.simple_value)


def read_scalars(logdir):
    """Every scalar in the event files directly in `logdir` (not in its subdirectories).

    A resumed run leaves several event files, and may write a step again (the steps after
    its last checkpoint): all files are merged, and for a repeated step the write with the
    later wall time wins.

    Args:
        logdir: a TensorBoard log directory, e.g. `<model_dir>/train`; a missing one has
            no scalars.
    Returns:
        {tag: (steps, values)}: two lists of the same length, in increasing step order.

    Example:
    ```python
    from electra_tf.training import curves, summaries
    for step, loss in [(1, 3.0), (2, 2.0)]:
        summaries.write_scalars("/tmp/electra_docs/tb/train", step, {"loss": loss})
    curves.read_scalars("/tmp/electra_docs/tb/train")["loss"]  # ([1, 2], [3.0, 2.0])
    ```
    """
    points = {}  # tag -> step -> (wall_time, order, value)
    order = 0
    for path in _event_files(logdir):
        try:
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                for value in event.summary.value:
                    if not (value.HasField("tensor") or value.HasField("simple_value")):
                        continue
                    order += 1
                    point = (event.wall_time, order, _value(value))
                    steps = points.setdefault(value.tag, {})
                    if event.step not in steps or point[:2] > steps[event.step][:2]:
                        steps[event.step] = point
        except tf.errors.DataLossError:
            pass  # the end of a file its writer was killed while writing: keep what reads
    return {tag: (sorted(steps), [steps[s][2] for s in sorted(steps)])
            for tag, steps in sorted(points.items())}


def plot_learning_curves(png_path, panels, title=None):
    """Draws one panel per entry of `panels` against the step and writes a PNG atomically.

    Up to three panels side by side (four: two by two).

    Args:
        png_path: the PNG to write (replaced if it exists).
        panels: a list of `(panel title, [(logdir, tag, label), ...])`; each curve is the
            scalar `tag` of `read_scalars(logdir)`. A panel none of whose curves has data
            says "no data" instead of failing.
        title: the figure's title, or None.
    Returns:
        `png_path`.

    Example:
    ```python
    from electra_tf.training import curves, summaries
    summaries.write_scalars("/tmp/electra_docs/tb/train", 1, {"loss": 3.0})
    curves.plot_learning_curves(
        "/tmp/electra_docs/tb/curves.png",
        [("loss", [("/tmp/electra_docs/tb/train", "loss", "train"),
                   ("/tmp/electra_docs/tb/eval", "loss", "eval")]),
         ("learning rate", [("/tmp/electra_docs/tb/train", "learning_rate", "lr")])],
        title="a tiny run")
    ```
    """
    import matplotlib
    matplotlib.use("Agg")  # no display: draw into memory only
    from matplotlib import pyplot, ticker

    scalars = {}

    def read(logdir):
        if logdir not in scalars:
            scalars[logdir] = read_scalars(logdir)
        return scalars[logdir]

    columns = min(len(panels), 2 if len(panels) == 4 else 3)
    rows = -(-len(panels) // columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(4.5 * columns, 3.4 * rows),
                                   squeeze=False)
    try:
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (panel_title, curves) in zip(axes.flat, panels):
            drawn = False
            for logdir, tag, label in curves:
                steps, values = read(logdir).get(tag, ([], []))
                if steps:
                    ax.plot(steps, values, marker="o" if len(steps) < 20 else None,
                            markersize=3, label=label)
                    drawn = True
            if drawn:
                ax.legend(fontsize="small")
            else:
                ax.text(0.5, 0.5, "no data", ha="center", va="center",
                        transform=ax.transAxes, color="gray")
            ax.set_title(panel_title)
            ax.set_xlabel("step")
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        pyplot.close(figure)
    with files.atomic_path(png_path, overwrite=True) as tmp:
        with files.open_file(tmp, "wb") as f:
            f.write(buffer.getvalue())
    return png_path
