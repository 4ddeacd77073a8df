"""`trainflow check siamese`: IDX images and labels against the champion's, no training."""

from __future__ import annotations

from pathlib import Path

from lib.core.champion import champion_reference
from lib.core.drift import DriftReport
from lib.siamese.constants import MODEL_NAME
from lib.siamese.drift import image_profile, read_profile, siamese_drift
from lib.siamese.idx import read_labelled_images


def check_siamese(images_path: Path, labels_path: Path) -> tuple[str, DriftReport]:
    """Validate the IDX pair as a run would, then compare it with the champion's profile.

    Returns the champion's version and the report.

    Raises:
        IdxFormatError: either file is not valid IDX data, or their counts differ.
        LookupError: no champion, or one without a reference.
    """
    images, labels = read_labelled_images(images_path, labels_path)
    incoming = image_profile(images, labels)
    with champion_reference(MODEL_NAME) as (version, reference):
        return version, siamese_drift(read_profile(reference), incoming)
