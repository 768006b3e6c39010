"""A trial's model directory: our weights, the original TF1 layout, the config, serving."""

import datetime
import json
import os

import numpy as np
import tensorflow as tf

from electra_tf import checkpoints
from electra_tf.serving.export import SERVING_FILE
from finetune import model_dir, records, weights
from finetune.config import FinetuningConfig
from finetune.model import build_finetuning_model
from finetune.trials import run_finetuning
from tests.finetune.conftest import TINY, TINY_CHECKPOINT


def test_model_dir_holds_keras_and_original_checkpoints(data_dir):
    """A trial's model dir reloads (ours and the original TF1 layout) to the same outputs."""
    config = FinetuningConfig("tiny", str(data_dir), task_names=["rte"], num_trials=1,
                              init_checkpoint=TINY_CHECKPOINT, **TINY)
    run_finetuning(config)
    directory = config.model_dir + "_1"
    loaded = model_dir.load(directory)
    assert [t.name for t in loaded.tasks] == ["rte"]
    assert json.loads(open(f"{directory}/labels.json").read()) == {
        "rte": ["entailment", "not_entailment"]}
    prefix = checkpoints.resolve_checkpoint(directory + "/original")
    names = dict(tf.train.list_variables(prefix))
    steps = int(8 // 4 * 2.0)  # 6 examples + 2 padding, batch 4, 2 epochs
    assert prefix.endswith(f"model.ckpt-{steps}")
    assert names["task_specific/rte/dense/kernel"] == [64, 2]
    assert "task_specific/rte/dense/kernel/adam_m" in names and "global_step" in names
    assert int(tf.train.load_checkpoint(prefix).get_tensor("global_step")) == steps
    original = weights.load_finetuned_original(prefix, build_finetuning_model(config,
                                                                              loaded.tasks))
    _, features = records.featurize(config, loaded.tasks, "dev")
    a = loaded.model(features, training=False)["rte"]["logits"]
    b = original(features, training=False)["rte"]["logits"]
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.abs(a).max() > 0
    # The config reads back as it was resolved; the directory names its serving builder.
    assert loaded.config.to_dict() == config.to_dict()
    assert json.loads(open(os.path.join(directory, SERVING_FILE)).read()) == {
        "entry_point": "finetuned"}
    assert sorted(os.listdir(directory)) == sorted(model_dir.OWN_FILES)
    assert model_dir.is_complete(directory) and not model_dir.is_complete(directory + "x")
    record = model_dir.read_training(directory)
    assert record["global_step"] == steps and record["train_seconds"] > 0
    os.remove(os.path.join(directory, model_dir.TRAINING_FILE))  # as written before it existed
    old = model_dir.read_training(directory)
    assert (old["global_step"], old["train_seconds"]) == (steps, None)
    written = datetime.datetime.fromisoformat(old["finished_at"])  # the weights' time
    assert abs((written - datetime.datetime.fromisoformat(record["finished_at"])
                ).total_seconds()) < 60
    assert not [n for n in os.listdir(os.path.dirname(directory)) if n.startswith(".tmp-")]
