"""Whether image pairs look like Fashion-MNIST, the only images the siamese model has seen.

Fashion-MNIST is a light garment on a black background: the mean of the 108 pixels on an
image's outer border is at most 95 over all 10,000 test images (median 11). A photo of a
dark garment on a light background, given without `--invert`, has a bright border, and the
model's distance for it means little. A pair is outside the domain when either image's
border is brighter than `MAX_BORDER_MEAN`; no reference artifact is needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.core.serving import DOMAIN_NOTE, IN_DOMAIN

MAX_BORDER_MEAN = 128.0
"""Brightest mean border (0..255) of an image still taken as light-on-black."""


def border_means(images: np.ndarray) -> np.ndarray:
    """Mean of the outer ring of pixels of each image in ``(n, height, width)``."""
    ring = np.ones(images.shape[1:], dtype=bool)
    ring[1:-1, 1:-1] = False
    return images[:, ring].mean(axis=1) if len(images) else np.empty(0)


def check_pairs(images: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """Columns `IN_DOMAIN` and `DOMAIN_NOTE` for pairs given as side -> ``(n, 28, 28)``."""
    notes: list[list[str]] = [[] for _ in range(len(index))]
    for side, stack in images.items():
        means = border_means(stack)
        for row in np.flatnonzero(means > MAX_BORDER_MEAN):
            notes[row].append(
                f"{side} image has a light background (border mean {means[row]:.0f} > "
                f"{MAX_BORDER_MEAN:.0f}); Fashion-MNIST is light on black"
            )
    return pd.DataFrame(
        {
            IN_DOMAIN: [not found for found in notes],
            DOMAIN_NOTE: ["; ".join(found) for found in notes],
        },
        index=index,
    )
