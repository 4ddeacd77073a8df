"""The data sets trainflow downloads: where each file lives and what it must hash to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One published file, pinned by its sha256.

    Attributes:
        name: file name, also its place under the raw store.
        mirror_path: where the file lies in a mirror laid out like ``../shared/data``.
        urls: published locations, tried in order after the mirrors.
        sha256: expected hex digest; ``None`` for user-supplied sources (still validated).
        size: expected size in bytes, when published (bounds a download).
    """

    name: str
    mirror_path: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None = None


ENERGY_WORKBOOK = RemoteFile(
    name="ENB2012_data.xlsx",
    mirror_path="ENB2012_data.xlsx",
    urls=("https://archive.ics.uci.edu/ml/machine-learning-databases/00242/ENB2012_data.xlsx",),
    sha256="0089fcffc1415e41e2ff63730cca5280efe54fc43d722dfde1b0aaa808e35dc4",
    size=76_189,
)

_FASHION_PRIMARY = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_FASHION_SECONDARY = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


def _fashion(name: str, sha256: str, size: int) -> RemoteFile:
    return RemoteFile(
        name=name,
        mirror_path=f"fashion-mnist/{name}",
        urls=(_FASHION_PRIMARY + name, _FASHION_SECONDARY + name),
        sha256=sha256,
        size=size,
    )


FASHION_TRAIN_IMAGES = _fashion(
    "train-images-idx3-ubyte.gz",
    "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    26_421_880,
)
FASHION_TRAIN_LABELS = _fashion(
    "train-labels-idx1-ubyte.gz",
    "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    29_515,
)
FASHION_TEST_IMAGES = _fashion(
    "t10k-images-idx3-ubyte.gz",
    "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    4_422_102,
)
FASHION_TEST_LABELS = _fashion(
    "t10k-labels-idx1-ubyte.gz",
    "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    5_148,
)
FASHION_FILES = (
    FASHION_TRAIN_IMAGES,
    FASHION_TRAIN_LABELS,
    FASHION_TEST_IMAGES,
    FASHION_TEST_LABELS,
)
