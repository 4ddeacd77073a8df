"""The Fashion-MNIST siamese network: one shared base network, a Euclidean distance out.

Two inputs `left` and `right` take raw 28x28 pixels (0..255 as floats); the shared
`base_network` rescales them to [0, 1] itself, so whoever serves the model passes raw pixels
and no preprocessing has to travel beside it. Its output `distance` is trained with the
contrastive loss (label 1 = same class) and read as "same class" when below a threshold:
0.5 during training (the course's rule), a calibrated one at evaluation.

Measured by `benchmarks/siamese.py` (seeds 0 / 1; trained on 90% of the training images,
threshold calibrated on course pairs of the other 10%, accuracy on course pairs of the 10,000
test images; 2 CPU cores shared with other jobs at load 4-9, so times are inflated; the
course recipe itself took 287 / 273 s in the same run):

| preset  | test acc @0.5   | test acc @calibrated | train wall s |
| ------- | --------------- | -------------------- | ------------ |
| course  | 0.910 / 0.915   | 0.912 / 0.919        | 280 / 210    |
| default | 0.929 / 0.931   | 0.932 / 0.932        | 316 / 455    |

ROC AUC on the seed-0 test pairs: 0.974 for the course preset; 0.981 for the default when
it trained 14 epochs (not measured since).

Per pair seen, the CNN learns no faster than the course's MLP; it keeps improving where the
MLP levels off at ~0.913 after 3 epochs. A convolution costs ~3x the MLP per pair on this CPU
with strides (~9x with max pooling), so the default's 20 epochs of 60,000 fresh pairs (1.2M
pairs) take somewhat longer than the course recipe's 20 epochs of its fixed 120k.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from lib.components import ContrastiveLoss, DistanceAccuracy, EuclideanDistance
from lib.siamese.constants import IMAGE_SHAPE, LEFT, MAX_PIXEL, RIGHT, TRAINED_THRESHOLD
from lib.siamese.data import fresh_pair_dataset, pair_dataset
from lib.siamese.pairs import course_pairs
from lib.siamese.recipes import SiameseRecipe

CONV_KERNEL = 3
POOL_SIZE = 2


def build_base_network(recipe: SiameseRecipe) -> keras.Model:
    """The network that embeds one raw 28x28 image; the siamese model shares one instance."""
    image = keras.Input(shape=IMAGE_SHAPE, name="image")
    hidden = keras.layers.Rescaling(1.0 / MAX_PIXEL, name="rescale")(image)
    if recipe.conv_filters:
        hidden = keras.layers.Reshape((*IMAGE_SHAPE, 1), name="channel")(hidden)
        strides = POOL_SIZE if recipe.downsample == "stride" else 1
        for i, filters in enumerate(recipe.conv_filters, start=1):
            hidden = keras.layers.Conv2D(
                filters, CONV_KERNEL, strides=strides, activation="relu", name=f"conv_{i}"
            )(hidden)
            if recipe.downsample == "pool":
                hidden = keras.layers.MaxPooling2D(POOL_SIZE, name=f"pool_{i}")(hidden)
    hidden = keras.layers.Flatten(name="flatten")(hidden)
    last = len(recipe.dense_units)
    for i, units in enumerate(recipe.dense_units, start=1):
        activation = recipe.embedding_activation if i == last else "relu"
        hidden = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(hidden)
        if i < last and recipe.dropout:
            hidden = keras.layers.Dropout(recipe.dropout, name=f"dropout_{i}")(hidden)
    return keras.Model(inputs=image, outputs=hidden, name="base_network")


def build_siamese_model(recipe: SiameseRecipe) -> keras.Model:
    """Build and compile the siamese model: inputs `left`, `right`; output `distance`."""
    base = build_base_network(recipe)
    left = keras.Input(shape=IMAGE_SHAPE, name=LEFT)
    right = keras.Input(shape=IMAGE_SHAPE, name=RIGHT)
    distance = EuclideanDistance(name="distance")([base(left), base(right)])
    model = keras.Model(inputs={LEFT: left, RIGHT: right}, outputs=distance, name="siamese")
    model.compile(
        optimizer=_optimizer(recipe),
        loss=ContrastiveLoss(margin=recipe.margin),
        metrics=[DistanceAccuracy(threshold=TRAINED_THRESHOLD)],
    )
    return model


def training_dataset(
    recipe: SiameseRecipe,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    seed: int,
) -> tf.data.Dataset:
    """The training pipeline the recipe's pair protocol asks for, over `indices` only.

    Args:
        recipe: decides the protocol, batch size and pairs per epoch.
        images: ``(n, 28, 28)`` uint8, all images `indices` point into.
        labels: ``(n,)`` classes of `images`.
        indices: positions usable for training (validation images excluded).
        seed: seeds the course's negative partners and the per-epoch shuffles or pairs.
    """
    if recipe.pairs == "course":
        pairs = course_pairs(labels, np.random.default_rng(seed), indices=indices)
        return pair_dataset(images, pairs, recipe.batch_size, shuffle_seed=seed)
    assert recipe.pairs_per_epoch is not None  # the recipe's validator guarantees it
    return fresh_pair_dataset(
        images, labels, recipe.pairs_per_epoch, recipe.batch_size, seed, indices=indices
    )


def _optimizer(recipe: SiameseRecipe) -> keras.optimizers.Optimizer:
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = recipe.learning_rate
    if recipe.learning_rate_schedule == "cosine":
        assert recipe.pairs_per_epoch is not None  # the recipe's validator guarantees it
        steps_per_epoch = -(-recipe.pairs_per_epoch // recipe.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            recipe.learning_rate, decay_steps=recipe.epochs * steps_per_epoch
        )
    if recipe.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=learning_rate)
    return keras.optimizers.Adam(learning_rate=learning_rate)
