"""What tasks hand each other: paths, hashes and a few numbers; never frames, arrays or models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lib.core.refs import FileRef


class _Descriptor(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TableRef(_Descriptor):
    """A validated Parquet table and the raw file it came from."""

    table: FileRef
    source: FileRef
    rows: int


class SplitRef(_Descriptor):
    """Row positions of train/validation/test (a JSON file) for one table and seed.

    `reference` holds the training rows themselves, as the registered version carries them.
    """

    split: FileRef
    seed: int
    sizes: dict[str, int]
    reference: FileRef


class TrainedModel(_Descriptor):
    """A saved `.keras` model and its per-epoch history."""

    model: FileRef
    history: FileRef
    epochs_run: int
    seconds: float


class Evaluation(_Descriptor):
    """Test metrics of a model, on how many test rows (or pairs), and the plots that show them."""

    metrics: dict[str, float]
    test_rows: int
    plots: tuple[FileRef, ...]


class ChampionRef(_Descriptor):
    """The registry's current champion: enough to evaluate it and to know if it is us.

    `metrics` are the champion's on the candidate's own test data, once scored; `problem`
    says why a champion that could not be scored was set aside.
    """

    name: str
    version: str
    candidate_id: str
    metrics: dict[str, float] | None = None
    problem: str | None = None


class PairsRef(_Descriptor):
    """Index pairs of one seed: kept training images, validation and test pairs."""

    train_indices: FileRef
    validation: FileRef
    test: FileRef
    seed: int


class Candidate(_Descriptor):
    """One trained and evaluated model on its way to the registry, with what to log about it.

    Attributes:
        parameters: the flow's parameters, as the report shows them.
        recipe: the recipe trained; with `preset` and `seed` the MLflow run's params.
        tags: data hashes and such, set on the MLflow run and the model version.
        data: what the report says about the data (source, hashes, rows).
        test_data: the files the model spec's scorer scores any model on: the candidate's
            own test rows (or pairs), so a champion is judged on the same ones.
        reference: what the model learned from, in the form its version carries it (the
            energy training rows; a profile of the siamese training images, one row of
            class, mean intensity and pixel std per image): serving checks inputs against
            it, drift checks compare new data with it. None where a pipeline has none.
        started_at: when the flow run reached training (seconds since the epoch): where the
            MLflow run of the candidate begins.
    """

    trained: TrainedModel
    evaluation: Evaluation
    parameters: dict[str, Any]
    recipe: dict[str, Any]
    tags: dict[str, str]
    data: dict[str, str]
    test_data: tuple[FileRef, ...]
    reference: FileRef | None = None
    started_at: float | None = None

    @property
    def candidate_id(self) -> str:
        """A candidate is its model file: the same bytes are the same candidate."""
        return self.trained.model.sha256


class DriftRef(_Descriptor):
    """Incoming data against the champion's reference: the verdict, its report and plot.

    `report` (a `lib.core.drift.DriftReport` as JSON) and `plot` are None when nothing was
    compared (no champion yet, or one without a reference); `summary` then says why.
    """

    drifted: bool
    summary: str
    report: FileRef | None = None
    plot: FileRef | None = None


class RunSummary(_Descriptor):
    """What one pipeline run did: what the flow returns and the CLI prints.

    Attributes:
        version_url: the version's page in the MLflow UI (`trainflow ui` serves it when the
            registry is the local SQLite file).
        champion_metrics: the champion's on the same test data; None when there was none.
        champion_version: the champion the candidate was judged against.
    """

    pipeline: str
    model: str
    version: str
    version_url: str
    promoted: bool
    newly_registered: bool
    reason: str
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    champion_version: str | None
    epochs: int
    train_seconds: float
    drift: str = ""
