"""What tasks hand each other: paths, hashes and a few numbers; never frames, arrays or models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lib.refs import FileRef


class _Descriptor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TableRef(_Descriptor):
    """A validated Parquet table and the raw file it came from."""

    table: FileRef
    source: FileRef
    rows: int


class SplitRef(_Descriptor):
    """Row positions of train/validation/test (a JSON file) for one table and seed."""

    split: FileRef
    seed: int
    sizes: dict[str, int]


class TrainedModel(_Descriptor):
    """A saved `.keras` model and its per-epoch history."""

    model: FileRef
    history: FileRef
    epochs_run: int
    seconds: float


class Evaluation(_Descriptor):
    """Test metrics of a model and the PNG plots that show them."""

    metrics: dict[str, float]
    plots: tuple[FileRef, ...]


class ChampionRef(_Descriptor):
    """The registry's current champion: enough to evaluate it and to know if it is us."""

    name: str
    version: str
    candidate_id: str
    metrics: dict[str, float] | None = None


class PairsRef(_Descriptor):
    """Index pairs of one seed: kept training images, validation and test pairs."""

    train_indices: FileRef
    validation: FileRef
    test: FileRef
    seed: int
