"""Fashion-MNIST-like or not: a light border marks a pair as outside the domain."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lib.siamese.domain import MAX_BORDER_MEAN, border_means, check_pairs
from tests.fixtures.fashion import synthetic_images


def test_border_mean_reads_only_the_outer_ring() -> None:
    image = np.zeros((1, 28, 28))
    image[0, 1:-1, 1:-1] = 255  # everything but the ring
    assert border_means(image).tolist() == [0.0]
    image[0, 0, :] = 108  # one edge of 28 of the 108 ring pixels
    assert border_means(image)[0] == 28.0


def test_light_on_black_images_are_in_domain_and_inverted_ones_are_not() -> None:
    images, _ = synthetic_images(2, seed=0)
    dark = images[:3].astype("float64")
    light = 255.0 - dark
    flags = check_pairs({"left": dark, "right": light}, pd.Index(["a", "b", "c"]))
    assert flags["in_domain"].tolist() == [False] * 3
    assert list(flags.index) == ["a", "b", "c"]
    note = flags["domain_note"]["a"]
    assert note.startswith("right image has a light background (border mean ")
    assert note.endswith(f"> {MAX_BORDER_MEAN:.0f}); Fashion-MNIST is light on black")

    fine = check_pairs({"left": dark, "right": dark}, pd.RangeIndex(3))
    assert fine["in_domain"].tolist() == [True] * 3 and (fine["domain_note"] == "").all()
