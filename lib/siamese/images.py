"""Image files -> 28x28 uint8 arrays the siamese model takes, as Fashion-MNIST stores them.

An image file states its size in its header and Pillow decodes all of it, so the size is
checked from the header alone (`Image.open` reads no pixels) before a byte is decoded: a
100-byte PNG can claim 400 megapixels, and one claiming 20,000,000 x 1 pixels took 1 GB and
5 s to resize, because LANCZOS's kernel grows with the shrink factor of each side.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lib.core.errors import InputError
from lib.siamese.constants import IMAGE_SHAPE

ACCEPTED_FORMATS = ("PNG", "JPEG")
GRAYSCALE = "L"
BLACK = (0, 0, 0, 255)
MAX_PIXELS = 40_000_000
"""Largest picture decoded: a 48 MP phone photo is saved at 12 MP by default. Decoded as RGBA
it takes 160 MB, and conversion to grayscale holds a few copies."""
MAX_SIDE_PIXELS = 65_535
"""Longest side decoded (JPEG's own limit): LANCZOS's kernel takes ~48 bytes per source pixel
of a side, so this keeps it at 3 MB."""
_SHOWN_ERROR_CHARS = 160


class ImageFormatError(InputError):
    """A file is not a readable PNG or JPEG image; the message names it."""


def load_image_28x28(path: Path, *, invert: bool = False) -> np.ndarray:
    """Read a PNG or JPEG of any size as a ``(28, 28)`` uint8 grayscale array.

    The picture is turned upright first when its EXIF says the camera was rotated (phones
    store portrait photos sideways plus an Orientation tag). Colour is converted to
    luminance and the picture is resized (LANCZOS, without keeping the aspect ratio, as
    Fashion-MNIST's own 28x28 crops do not). Transparent pixels become black,
    Fashion-MNIST's background.

    Args:
        path: the image file.
        invert: Fashion-MNIST shows light garments on black; a photo of a dark garment on a
            white background needs ``invert=True`` to look like the training data.

    Raises:
        ImageFormatError: when the file is not a PNG or JPEG, is truncated or corrupt, or
            its header claims more than `MAX_PIXELS` pixels or a side longer than
            `MAX_SIDE_PIXELS` (checked before decoding).
        FileNotFoundError: when `path` does not exist.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice that; refuse there too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=ACCEPTED_FORMATS) as image:
                _check_size(path, image.size)
                ImageOps.exif_transpose(image, in_place=True)
                gray = _to_grayscale(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(path, str(error)) from error
    except (UnidentifiedImageError, SyntaxError) as error:
        raise ImageFormatError(
            f"{path}: Expected a PNG or JPEG image. Received: {_describe(error)}"
        ) from error
    except ImageFormatError:
        raise
    except (OSError, ValueError, EOFError) as error:  # Pillow's ways to say "damaged"
        if isinstance(error, FileNotFoundError):
            raise
        raise ImageFormatError(
            f"{path}: Expected a complete PNG or JPEG image; it is truncated or corrupt. "
            f"Received: {_describe(error)}"
        ) from error
    pixels = np.asarray(gray.resize(IMAGE_SHAPE[::-1], Image.Resampling.LANCZOS), dtype=np.uint8)
    return 255 - pixels if invert else pixels


def _check_size(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE_PIXELS:
        raise _too_large(path, f"{width:,} x {height:,} pixels")


def _too_large(path: Path, received: str) -> ImageFormatError:
    return ImageFormatError(
        f"{path}: Expected an image of at most {MAX_PIXELS:,} pixels (MAX_PIXELS) and "
        f"{MAX_SIDE_PIXELS:,} on a side (MAX_SIDE_PIXELS). Received: {received}"
    )


def _describe(error: BaseException) -> str:
    """The error's type and message, cut short and escaped: Pillow quotes file content in some."""
    text = f"{type(error).__name__}: {error}"
    shown = text if len(text) <= _SHOWN_ERROR_CHARS else f"{text[:_SHOWN_ERROR_CHARS]}..."
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in shown)


def _to_grayscale(image: Image.Image) -> Image.Image:
    """Decode fully (so truncation surfaces here) and convert to 8-bit luminance."""
    image.load()
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # convert() copies even to the same mode; a 40 MP picture is 160 MB a copy.
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, BLACK), rgba).convert(GRAYSCALE)
    return image.convert(GRAYSCALE)
