"""Same kind of article or not: two image files scored by the champion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lib.core.champion import load_champion
from lib.siamese.constants import LEFT, MODEL_NAME, RIGHT
from lib.siamese.images import load_image_28x28


def predict_siamese(left: Path, right: Path, *, invert: bool = False) -> tuple[float, bool]:
    """Distance between two images (any size, PNG/JPEG) and the champion's same/different."""
    frame = pd.DataFrame(
        {
            side: [load_image_28x28(path, invert=invert).reshape(-1).tolist()]
            for side, path in ((LEFT, left), (RIGHT, right))
        }
    )
    result = load_champion(MODEL_NAME).predict(frame)
    return float(result["distance"].iloc[0]), bool(result["same"].iloc[0])
