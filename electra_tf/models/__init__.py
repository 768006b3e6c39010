"""The ELECTRA networks as Keras models, from layers up.

numerics (LayerNorm ε, GELU, initialiser) → embeddings, attention → transformer → encoder
→ heads → electra (generator, discriminator, two-tower generator, `build_models`).
"""

from electra_tf.models.electra import (
    Discriminator, ElectraModels, Generator, TwoTowerGenerator, build_models, count_params)
from electra_tf.models.encoder import Encoder

__all__ = ["Discriminator", "ElectraModels", "Encoder", "Generator", "TwoTowerGenerator",
           "build_models", "count_params"]
