"""Image files -> 28x28 uint8: sizes, colour, transparency, inversion, EXIF, and bad files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile, PngImagePlugin

from lib.siamese.images import MAX_PIXELS, MAX_SIDE_PIXELS, ImageFormatError, load_image_28x28
from tests.fixtures.hostile import jpeg_with_orientation, png_claiming


def _save(image: Image.Image, path: Path, **options: Any) -> Path:
    image.save(path, **options)
    return path


def test_png_of_any_size_becomes_28x28_uint8(tmp_path: Path) -> None:
    path = _save(Image.new("L", (97, 41), 200), tmp_path / "wide.png")
    pixels = load_image_28x28(path)
    assert pixels.shape == (28, 28) and pixels.dtype == np.uint8
    assert (pixels == 200).all()


def test_colour_becomes_luminance(tmp_path: Path) -> None:
    # ITU-R 601-2 luma, as Pillow's "L" mode: 0.299 R + 0.587 G + 0.114 B.
    path = _save(Image.new("RGB", (50, 50), (255, 0, 0)), tmp_path / "red.png")
    assert (load_image_28x28(path) == 76).all()


def test_jpeg_is_read(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (64, 64), (128, 128, 128)), tmp_path / "grey.jpg", quality=95)
    pixels = load_image_28x28(path)
    assert pixels.shape == (28, 28)
    assert np.abs(pixels.astype(int) - 128).max() <= 2


def test_resize_keeps_the_picture_in_place(tmp_path: Path) -> None:
    # A 56x56 image whose left half is white lands as a 28x28 with a white left half.
    array = np.zeros((56, 56), dtype=np.uint8)
    array[:, :28] = 255
    pixels = load_image_28x28(_save(Image.fromarray(array), tmp_path / "half.png"))
    assert (pixels[:, :13] > 250).all() and (pixels[:, 15:] < 5).all()


def test_transparent_pixels_become_black(tmp_path: Path) -> None:
    image = Image.new("RGBA", (28, 28), (255, 255, 255, 0))
    image.paste((255, 255, 255, 255), (0, 0, 14, 28))
    pixels = load_image_28x28(_save(image, tmp_path / "alpha.png"))
    assert (pixels[:, :14] == 255).all() and (pixels[:, 14:] == 0).all()


def test_invert_turns_dark_on_light_into_light_on_dark(tmp_path: Path) -> None:
    path = _save(Image.new("L", (28, 28), 250), tmp_path / "photo.png")
    assert (load_image_28x28(path, invert=True) == 5).all()


def test_a_text_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    with pytest.raises(ImageFormatError, match=r"notes\.png: Expected a PNG or JPEG image"):
        load_image_28x28(path)


def test_other_formats_are_refused(tmp_path: Path) -> None:
    path = _save(Image.new("L", (28, 28), 0), tmp_path / "shirt.gif")
    with pytest.raises(ImageFormatError, match=r"shirt\.gif: Expected a PNG or JPEG image"):
        load_image_28x28(path)


def test_a_truncated_png_is_refused(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    whole = _save(Image.fromarray(noise), tmp_path / "whole.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageFormatError, match=r"cut\.png: Expected a complete PNG or JPEG"):
        load_image_28x28(path)


def test_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.png"):
        load_image_28x28(tmp_path / "absent.png")


# --- hostile files -------------------------------------------------------------------------------


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixels were decoded before the size check refused the file")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


@pytest.mark.parametrize(
    ("width", "height", "received"),
    [
        (10_000, 5_000, r"Received: 10,000 x 5,000 pixels$"),  # above ours, below Pillow's
        (10_000, 10_000, r"Received: Image size \(100000000 pixels\) exceeds limit"),  # warning
        (20_000, 20_000, r"Received: Image size \(400000000 pixels\) exceeds limit"),  # error
        (20_000_000, 1, r"Received: 20,000,000 x 1 pixels$"),  # few pixels, one absurd side
    ],
    ids=["50-megapixels", "pillow-warning-band", "pillow-bomb-error", "absurd-side"],
)
def test_refuses_images_claiming_too_many_pixels_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int, height: int, received: str
) -> None:
    path = png_claiming(tmp_path / "huge.png", width, height)
    assert path.stat().st_size < 200
    _forbid_decoding(monkeypatch)

    with pytest.raises(
        ImageFormatError,
        match=rf"huge\.png: Expected an image of at most {MAX_PIXELS:,} pixels \(MAX_PIXELS\) "
        rf"and {MAX_SIDE_PIXELS:,} on a side \(MAX_SIDE_PIXELS\)\. ",
    ) as caught:
        load_image_28x28(path)
    assert caught.match(received)


def test_random_bytes_are_refused_with_the_path(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ImageFormatError, match=r"photo\.jpg: Expected a PNG or JPEG image"):
        load_image_28x28(path)


def test_a_truncated_jpeg_is_refused(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    whole = _save(Image.fromarray(noise), tmp_path / "whole.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageFormatError, match=r"cut\.jpg: Expected a complete PNG or JPEG"):
        load_image_28x28(path)


def test_a_png_whose_text_inflates_past_pillows_limit_is_refused(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), zip=True)
    path = _save(Image.new("L", (28, 28), 0), tmp_path / "text.png", pnginfo=info)
    assert path.stat().st_size < 10_000
    with pytest.raises(ImageFormatError, match=r"text\.png: Expected a complete PNG or JPEG"):
        load_image_28x28(path)


def _half_white(width: int, height: int) -> Image.Image:
    """Left half white, right half black: where the white lands shows the rotation."""
    array = np.zeros((height, width), dtype=np.uint8)
    array[:, : width // 2] = 255
    return Image.fromarray(array)


def test_exif_rotated_jpegs_are_turned_upright(tmp_path: Path) -> None:
    # Orientation 6: the camera was turned 90° clockwise; viewers rotate it back, so the
    # stored picture's left half becomes the top half.
    rotated = load_image_28x28(jpeg_with_orientation(tmp_path / "r.jpg", _half_white(64, 32), 6))
    plain = load_image_28x28(jpeg_with_orientation(tmp_path / "p.jpg", _half_white(64, 32), 1))

    assert rotated[:12].mean() > 240 and rotated[16:].mean() < 15
    assert plain[:, :12].mean() > 240 and plain[:, 16:].mean() < 15
