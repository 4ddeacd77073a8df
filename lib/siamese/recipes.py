"""How the siamese model is built and trained: the recipe schema and the named presets.

Kept apart from `lib.siamese.model` so that flows, the CLI and cache keys can read a recipe
without importing Keras.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator


class SiameseRecipe(BaseModel):
    """Everything that decides how the siamese model is built and trained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    conv_filters: tuple[PositiveInt, ...] = Field(
        default=(),
        description="filters of each 3x3 relu convolution before the dense layers, each "
        "halving the image (see `downsample`); empty for the course's dense-only network",
    )
    downsample: Literal["pool", "stride"] = Field(
        default="pool",
        description="how each convolution halves the image: 2x2 max pooling after it, or a "
        "stride of 2 (fewer multiply-adds, no pooling layer)",
    )
    batch_norm: bool = Field(
        default=False,
        description="batch normalisation between each convolution and its relu (steadier "
        "training at higher rates; inference uses the moving averages)",
    )
    precision: Literal["float32", "mixed_bfloat16"] = Field(
        default="float32",
        description="number format of the base network's layers but its last: "
        "'mixed_bfloat16' computes in bfloat16 (weights stay float32): on CPUs with AMX "
        "(amx_bf16) up to 2x faster for large pooled convolutions, ~12 % for conv 32/64 "
        "pooled; without bfloat16 instructions 1.4-1.75x slower (BENCHMARKS.md). The "
        "embedding, the distance and the loss stay float32 either way",
    )
    dense_units: tuple[PositiveInt, ...] = Field(
        default=(128, 128, 128), min_length=1, description="units of each dense layer"
    )
    dropout: float = Field(
        default=0.1, ge=0, lt=1, description="dropout rate after every dense layer but the last"
    )
    embedding_activation: Literal["relu", "linear"] = Field(
        default="relu", description="activation of the last dense layer (the embedding)"
    )
    normalize_embedding: bool = Field(
        default=False,
        description="scale each embedding to unit length (distances then lie in [0, 2], so "
        "the margin and the 0.5 threshold mean the same for every network)",
    )
    optimizer: Literal["rmsprop", "adam"]
    learning_rate: float = Field(gt=0, description="initial learning rate")
    learning_rate_schedule: Literal["constant", "cosine"] = Field(
        default="constant",
        description="'cosine' decays the rate to 0 over all epochs' steps (known in advance "
        "only with pairs='balanced')",
    )
    epochs: int = Field(gt=0)
    batch_size: int = Field(gt=0)
    margin: float = Field(default=1.0, gt=0, description="contrastive-loss margin")
    pairs: Literal["course", "balanced", "in_batch"] = Field(
        description="'course': the course's fixed pairs, reshuffled every epoch; 'balanced': "
        "fresh class-balanced pairs every epoch; 'in_batch': batches of training images, "
        "each embedded once, every pair within a batch scored (positives and negatives "
        "weighted half each); one epoch passes over every training image once"
    )
    pairs_per_epoch: int | None = Field(
        default=None, gt=0, description="pairs drawn per epoch; 'balanced' only, even"
    )
    early_stopping_patience: int | None = Field(default=None, gt=0)
    reduce_lr_patience: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _pairs_per_epoch_matches_protocol(self) -> SiameseRecipe:
        if self.pairs == "balanced" and (self.pairs_per_epoch is None or self.pairs_per_epoch % 2):
            raise ValueError(
                "Expected an even pairs_per_epoch with pairs='balanced'. "
                f"Received: pairs_per_epoch={self.pairs_per_epoch}"
            )
        if self.learning_rate_schedule == "cosine" and self.pairs == "course":
            raise ValueError(
                "Expected pairs='balanced' or 'in_batch' with learning_rate_schedule='cosine' "
                f"(fresh pairs every epoch). Received: pairs={self.pairs!r}"
            )
        if self.pairs == "in_batch" and self.batch_norm:
            raise ValueError(
                "Expected batch_norm=False with pairs='in_batch': batch statistics leak across "
                "the pairs of a batch, and the served model then gave every pair one distance "
                "(BENCHMARKS.md). Received: batch_norm=True"
            )
        if self.pairs == "in_batch" and self.pairs_per_epoch is not None:
            raise ValueError(
                "Expected no pairs_per_epoch with pairs='in_batch' (an epoch is one pass over "
                f"the training images). Received: pairs_per_epoch={self.pairs_per_epoch}"
            )
        if self.learning_rate_schedule == "cosine" and self.reduce_lr_patience is not None:
            raise ValueError(
                "Expected no reduce_lr_patience with learning_rate_schedule='cosine' (the "
                f"schedule owns the rate). Received: reduce_lr_patience={self.reduce_lr_patience}"
            )
        if self.pairs == "course" and self.pairs_per_epoch is not None:
            raise ValueError(
                "Expected no pairs_per_epoch with pairs='course' (its pairs are fixed). "
                f"Received: pairs_per_epoch={self.pairs_per_epoch}"
            )
        return self


PRESETS: dict[str, SiameseRecipe] = {
    # The course recipe, exactly: Flatten -> 3 x Dense128 relu with dropout 0.1 between,
    # pixels scaled to [0, 1], RMSprop, contrastive margin 1, batch 128, 20 epochs, fixed pairs.
    "course": SiameseRecipe(
        optimizer="rmsprop",
        learning_rate=1e-3,
        epochs=20,
        batch_size=128,
        pairs="course",
    ),
    # A small strided CNN trained on every pair within batches of images: two 3x3 relu
    # convolutions of stride 2 (32 and 64 filters), then Dense128 relu; Adam with cosine
    # decay over 20 passes over the training images, batches of 256 images (each embedded
    # once, scored in 256 x 255 pairs). Chosen on validation pairs only (see BENCHMARKS.md,
    # "How the siamese default was chosen").
    "default": SiameseRecipe(
        conv_filters=(32, 64),
        downsample="stride",
        dense_units=(128,),
        dropout=0.0,
        optimizer="adam",
        learning_rate=2e-3,
        learning_rate_schedule="cosine",
        epochs=20,
        batch_size=256,
        pairs="in_batch",
        early_stopping_patience=3,
    ),
}
