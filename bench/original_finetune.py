"""Times the ORIGINAL google-research/electra fine-tuning update on one batch (measurement only).

    <the original's Python> bench/original_finetune.py --src DIR --batch FILE.npz
        [--model-size small] [--task mnli] [--steps 5] [--warmup 2] [--num-train-steps N]

Run by `bench/finetune_throughput.py --original on|auto` under the Python that
`orig_electra_env` (the original's measurement tools, see `bench/original.py`) prints, with DIR its `--src` copy of the original code. It imports that code and builds the
graph its `run_finetuning.model_fn_builder` builds in TRAIN mode, without the TPUEstimator:
`FinetuningModel` (the encoder and the task's head, random weights from the original's
initializers) and `optimization.create_optimizer` with the original's defaults (layer-wise LR
decay 0.8, weight decay 0.01, 10% warm-up). The batch is FILE.npz (written by the
fine-tuning bench: the same records ours trains on), repeated by `tf.data`. Each step is
`sess.run(train_op)` in a default `tf.Session`, timed on its own; seq/s is the batch over
the median. Prints one JSON line: seq_per_s, the step times, the trainable parameters, the
TensorFlow version.
Nothing of the original's code is in this project; it is only run.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
import types


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help="the original code (orig_electra_env --src)")
    parser.add_argument("--batch", required=True, help=".npz of the batch's features")
    parser.add_argument("--model-size", default="small", choices=("small", "base", "large"))
    parser.add_argument("--task", default="mnli")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--num-train-steps", type=int, default=10000,
                        help="the LR schedule's length (warm-up is 10%% of it)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        parser.error("--steps and --warmup must be >= 1")
    if not os.path.isfile(os.path.join(args.src, "run_finetuning.py")):
        parser.error(f"--src: no run_finetuning.py in {args.src} (the original's code)")
    return args


class _Absent(types.ModuleType):
    """Stands in for a module the original imports only for its dev-set metrics (scipy and
    sklearn, in `classification_metrics`), which the environment of `orig_electra_env`
    lacks; the timed update never uses them, and any use is an error naming the module."""

    def __getattr__(self, name):
        if name.startswith("__"):  # what introspection asks any module (hasattr, inspect)
            raise AttributeError(name)
        raise ImportError(f"{self.__name__}.{name}: {self.__name__} is not installed in the "
                          "original's environment (only a stand-in for the import)")


def main(argv=None):
    args = parse_args(argv)
    # The original's tf.layers.dense needs the legacy Keras layers; oneDNN on is TF's own
    # default on x86, set so that an inherited TF_ENABLE_ONEDNN_OPTS=0 cannot skew the run.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, args.src)
    for name in ("scipy", "sklearn"):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = _Absent(name)
    import numpy as np  # noqa: PLC0415 (after the environment is set)
    import tensorflow.compat.v1 as tf  # noqa: PLC0415
    tf.disable_v2_behavior()
    tf.logging.set_verbosity(tf.logging.ERROR)
    import configure_finetuning  # noqa: PLC0415 (the original's modules, from --src)
    import run_finetuning  # noqa: PLC0415
    from finetune import task_builder  # noqa: PLC0415
    from model import optimization  # noqa: PLC0415

    with np.load(args.batch, allow_pickle=False) as stored:
        batch = {key: stored[key] for key in stored.files}
    size, length = batch["input_ids"].shape
    config = configure_finetuning.FinetuningConfig(
        "bench", "/nonexistent-bench-data", model_size=args.model_size,
        task_names=[args.task], train_batch_size=int(size), max_seq_length=int(length))
    tasks = [task_builder.get_task(config, args.task, tokenizer=None)]
    tf.set_random_seed(0)
    features = tf.data.make_one_shot_iterator(
        tf.data.Dataset.from_tensors(batch).repeat()).get_next()
    model = run_finetuning.FinetuningModel(config, tasks, True, features, args.num_train_steps)
    train_op = optimization.create_optimizer(
        model.loss, config.learning_rate, args.num_train_steps,
        weight_decay_rate=config.weight_decay_rate, use_tpu=False,
        warmup_proportion=config.warmup_proportion,
        layerwise_lr_decay_power=config.layerwise_lr_decay,
        n_transformer_layers=model.bert_config.num_hidden_layers)
    params = int(sum(np.prod(v.shape.as_list()) for v in tf.trainable_variables()))
    times = []
    with tf.Session() as sess:  # default ConfigProto: TF's default thread pools, Grappler on
        sess.run(tf.global_variables_initializer())
        for _ in range(args.warmup):
            sess.run(train_op)
        for _ in range(args.steps):
            start = time.perf_counter()
            sess.run(train_op)
            times.append(time.perf_counter() - start)
    print(json.dumps({"seq_per_s": size / float(np.median(times)),
                      "step_seconds": [round(t, 4) for t in times],
                      "trainable_params": params, "tf": tf.__version__}), flush=True)


if __name__ == "__main__":
    main()
