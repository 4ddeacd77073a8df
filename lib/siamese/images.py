"""Image files -> 28x28 uint8 arrays the siamese model takes, as Fashion-MNIST stores them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from lib.core.errors import InputError

IMAGE_SIZE = (28, 28)
ACCEPTED_FORMATS = ("PNG", "JPEG")
GRAYSCALE = "L"
BLACK = (0, 0, 0, 255)


class ImageFormatError(InputError):
    """A file is not a readable PNG or JPEG image; the message names it."""


def load_image_28x28(path: Path, *, invert: bool = False) -> np.ndarray:
    """Read a PNG or JPEG of any size as a ``(28, 28)`` uint8 grayscale array.

    Colour is converted to luminance and the picture is resized (LANCZOS, without keeping
    the aspect ratio, as Fashion-MNIST's own 28x28 crops do not). Transparent pixels become
    black, Fashion-MNIST's background.

    Args:
        path: the image file.
        invert: Fashion-MNIST shows light garments on black; a photo of a dark garment on a
            white background needs ``invert=True`` to look like the training data.

    Raises:
        ImageFormatError: when the file is not a PNG or JPEG, is truncated, or is so large
            that Pillow refuses it as a decompression bomb.
        FileNotFoundError: when `path` does not exist.
    """
    path = Path(path)
    try:
        with Image.open(path, formats=ACCEPTED_FORMATS) as image:
            gray = _to_grayscale(image)
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as error:
        raise ImageFormatError(
            f"{path}: Expected a PNG or JPEG image. Received: {type(error).__name__}: {error}"
        ) from error
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise ImageFormatError(
            f"{path}: Expected a complete PNG or JPEG image; it is truncated or corrupt. "
            f"Received: {error}"
        ) from error
    pixels = np.asarray(gray.resize(IMAGE_SIZE, Image.Resampling.LANCZOS), dtype=np.uint8)
    return 255 - pixels if invert else pixels


def _to_grayscale(image: Image.Image) -> Image.Image:
    """Decode fully (so truncation surfaces here) and convert to 8-bit luminance."""
    image.load()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, BLACK), rgba).convert(GRAYSCALE)
    return image.convert(GRAYSCALE)
