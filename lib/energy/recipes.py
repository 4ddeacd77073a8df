"""How the energy model is built and trained: the recipe schema and the named presets.

Kept apart from `lib.energy.model` so that flows, the CLI and cache keys can read a recipe
without importing Keras.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EnergyRecipe(BaseModel):
    """Everything that decides how the energy model is built and trained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    one_hot: tuple[str, ...] = Field(
        default=(),
        description="features that also get one-hot indicators (X6, X8 by their codes; others "
        "by their distinct training values, if few)",
    )
    one_hot_crosses: tuple[tuple[str, str], ...] = Field(
        default=(),
        description="pairs of one-hot features that also get an indicator per pair of values "
        "(e.g. X6 x X8: which side the glazing faces)",
    )
    scale_targets: bool = Field(
        default=False,
        description="learn standardised loads; an inverted Normalization restores kWh/m²",
    )
    first_layer: Literal["dense", "quadratic"] = Field(
        default="dense",
        description="the first hidden layer: Dense128, or the course's Quadratic layer "
        "(a·x² + b·x + c per input, 128 units)",
    )
    members: int = Field(
        default=1,
        ge=1,
        description="independent networks trained side by side in one fit (each its own "
        "weights and loss) and served as one model that averages them",
    )
    log_targets: bool = Field(
        default=False,
        description="the network learns log loads (standardised) and an exponential restores "
        "kWh/m²: factors that multiply the load become terms that add; needs scale_targets",
    )
    optimizer: Literal["sgd", "adam"]
    learning_rate: float = Field(gt=0)
    learning_rate_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="'cosine' decays the rate to 0 over all epochs' steps, so training needs no "
        "validation-driven stopping or rate cuts",
    )
    weight_decay: float = Field(
        default=0.0, ge=0, description="decoupled weight decay (AdamW); 0 for plain Adam"
    )
    fit_rows: Literal["train", "non-test"] = Field(
        default="train",
        description="the rows the model is fit on: the split's training rows, or every "
        "non-test row (training and validation: nothing is chosen during such a fit, so no "
        "rows are held back for it)",
    )
    epochs: int = Field(gt=0)
    passes_per_epoch: int = Field(
        default=1,
        ge=1,
        description="shuffled passes over the rows in one epoch: the same gradient steps in "
        "fewer epochs, each of which ends with a checkpoint and a progress line; on a network "
        "this small that per-epoch work, not the steps, is most of the training time",
    )
    batch_size: int = Field(gt=0)
    loss: Literal["mse", "huber"]
    huber_threshold: float = Field(default=1.0, gt=0)
    early_stopping_patience: int | None = Field(default=None, gt=0)
    reduce_lr_patience: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _settings_fit_together(self) -> EnergyRecipe:
        if self.learning_rate_schedule == "cosine" and self.reduce_lr_patience is not None:
            raise ValueError(
                "Expected no reduce_lr_patience with learning_rate_schedule='cosine' (the "
                f"schedule owns the rate). Received: reduce_lr_patience={self.reduce_lr_patience}"
            )
        watching = self.early_stopping_patience or self.reduce_lr_patience
        if self.fit_rows == "non-test" and watching:
            raise ValueError(
                "Expected no early_stopping_patience or reduce_lr_patience with "
                "fit_rows='non-test' (they watch validation rows, which such a fit trains on). "
                f"Received: early_stopping_patience={self.early_stopping_patience}, "
                f"reduce_lr_patience={self.reduce_lr_patience}"
            )
        if self.log_targets and not self.scale_targets:
            raise ValueError(
                "Expected scale_targets=True with log_targets=True (the log loads are "
                f"standardised). Received: scale_targets={self.scale_targets}"
            )
        crossed = {name for pair in self.one_hot_crosses for name in pair}
        if not crossed <= set(self.one_hot):
            raise ValueError(
                "Expected one_hot_crosses of features in one_hot. "
                f"Received: one_hot={list(self.one_hot)}, one_hot_crosses="
                f"{[list(pair) for pair in self.one_hot_crosses]}"
            )
        if self.weight_decay and self.optimizer != "adam":
            raise ValueError(
                "Expected optimizer='adam' with a weight_decay (it makes AdamW). "
                f"Received: optimizer={self.optimizer!r}, weight_decay={self.weight_decay}"
            )
        return self


PRESETS: dict[str, EnergyRecipe] = {
    # The course recipe, exactly: features scaled with train statistics, SGD, mse, no stopping.
    "course": EnergyRecipe(
        optimizer="sgd",
        learning_rate=1e-3,
        epochs=500,
        batch_size=10,
        loss="mse",
    ),
    # Chosen by 5-fold cross-validation on the non-test rows only (benchmarks/energy.py --cv,
    # BENCHMARKS.md "Protocol"). Seed 0, CV RMSE Y1 / Y2: the previous default (Dense128 first,
    # 300 epochs) 0.395 / 0.684; the course's Quadratic layer first 0.361 / 0.620; three
    # members averaged 0.315 / 0.568 (150 epochs, as good as 300); the same 150 passes as 30
    # epochs of 5 passes 0.297 / 0.530, with a fifth of the per-epoch work (checkpoint,
    # progress). Registered models are fit on every non-test row: nothing is chosen in the fit.
    "default": EnergyRecipe(
        one_hot=("X1", "X6", "X7", "X8"),
        scale_targets=True,
        first_layer="quadratic",
        members=3,
        fit_rows="non-test",
        optimizer="adam",
        learning_rate=1e-2,
        learning_rate_schedule="cosine",
        weight_decay=0.02,
        epochs=30,
        passes_per_epoch=5,
        batch_size=64,
        loss="huber",
        huber_threshold=0.5,
    ),
}
