"""A sweep's grid from `--seeds` and `--set`, checked against the recipe's own schema."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lib.core.errors import InputError
from lib.core.sweep import (
    ValidationScore,
    parse_seeds,
    parse_values,
    plan_trials,
    shown_score,
    split_values,
    trial_grid,
)
from lib.energy.recipes import PRESETS, EnergyRecipe
from lib.siamese.recipes import PRESETS as SIAMESE_PRESETS
from lib.siamese.recipes import SiameseRecipe


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0-7", tuple(range(8))), ("3", (3,)), ("0,2,5", (0, 2, 5)), ("0-2,8,1", (0, 1, 2, 8))],
)
def test_seeds_are_ranges_and_lists(text: str, seeds: tuple[int, ...]) -> None:
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", r"^--seeds x: expected seeds such as 0-7, 3 or 0,2,5"),
        ("-1", r"^--seeds -1: expected"),
        ("7-0", r"^--seeds 7-0: a range runs upwards, 0-7 not 7-0$"),
        ("0-5000", r"^--seeds 0-5000: more than 1000 seeds$"),
    ],
)
def test_bad_seeds_are_one_line(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as raised:
        parse_seeds(text)
    assert "\n" not in str(raised.value)


def test_values_take_the_fields_types_and_drop_repeats() -> None:
    grid = parse_values(
        ["learning_rate=0.01,3e-3,0.01", "epochs=5", "early_stopping_patience=none,3"],
        EnergyRecipe,
    )
    assert grid == {
        "learning_rate": (0.01, 0.003),
        "epochs": (5,),
        "early_stopping_patience": (None, 3),
    }
    assert isinstance(grid["epochs"][0], int)


def test_tuple_values_keep_their_commas() -> None:
    assert split_values('["X1","X6"],[]') == ['["X1","X6"]', "[]"]
    grid = parse_values(['one_hot=["X1","X6"],[]'], EnergyRecipe)
    assert grid == {"one_hot": (("X1", "X6"), ())}
    assert parse_values(["dense_units=[64],[128,64]"], SiameseRecipe) == {
        "dense_units": ((64,), (128, 64))
    }


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "learnin_rate=0.1",
            r"^--set learnin_rate=0.1: the recipe has no field 'learnin_rate'; it has one_hot, ",
        ),
        ("learning_rate=-1", r"^--set learning_rate=-1: learning_rate='-1' is not valid: input "),
        ("learning_rate=fast", r"learning_rate='fast' is not valid: input should be a valid num"),
        ("epochs=2.5", r"epochs='2.5' is not valid: input should be a valid integer"),
        ("loss=mse,l1", r"^--set loss=mse,l1: loss='l1' is not valid: input should be 'mse' or"),
        ("epochs", r"^--set epochs: expected FIELD=VALUE\[,VALUE\.\.\.\], e.g. epochs=5,10$"),
        ("=3", r"^--set =3: expected FIELD=VALUE"),
    ],
)
def test_bad_values_are_one_line_naming_the_option(option: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as raised:
        parse_values([option], EnergyRecipe)
    assert "\n" not in str(raised.value)


def test_a_field_the_schema_gains_can_be_swept_at_once() -> None:
    # Fields come from the schema, not from a list: a subclass with one more field will do.
    class Wider(EnergyRecipe):
        warmup_epochs: int = 0

    assert parse_values(["warmup_epochs=0,5"], Wider) == {"warmup_epochs": (0, 5)}


def test_the_grid_is_every_seed_with_every_combination() -> None:
    base = PRESETS["default"]
    trials = trial_grid(base, (0, 1), {"learning_rate": (0.01, 0.003), "weight_decay": (0.0, 0.02)})
    assert len(trials) == 8
    assert [t.seed for t in trials] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert trials[1].values == {"learning_rate": 0.01, "weight_decay": 0.02}
    assert trials[1].label == "seed 0, learning_rate=0.01, weight_decay=0.02"
    assert trials[2].recipe == base.model_copy(update={"learning_rate": 0.003, "weight_decay": 0})
    assert trials[0].recipe.batch_size == base.batch_size  # type: ignore[attr-defined]


def test_no_values_is_one_trial_per_seed() -> None:
    trials = plan_trials(SIAMESE_PRESETS, "course", "0-2", [])
    assert [(t.seed, t.label, t.recipe) for t in trials] == [
        (seed, f"seed {seed}", SIAMESE_PRESETS["course"]) for seed in range(3)
    ]


def test_a_combination_the_recipe_refuses_is_one_line() -> None:
    with pytest.raises(InputError) as raised:
        plan_trials(PRESETS, "default", "0", ["optimizer=adam,sgd"])
    assert str(raised.value) == (
        "--set optimizer=sgd: expected optimizer='adam' with a weight_decay (it makes AdamW). "
        "Received: optimizer='sgd', weight_decay=0.02"
    )


def test_too_many_trials_is_refused_before_any_recipe_is_built() -> None:
    with pytest.raises(InputError, match=r"^1000 seeds x 2 recipe combinations is more than"):
        plan_trials(PRESETS, "default", "0-999", ["epochs=1,2"])


def test_the_best_score_follows_its_direction_and_skips_nan() -> None:
    lower = ValidationScore("mean_rmse", lower_is_better=True)
    higher = ValidationScore("accuracy", lower_is_better=False)
    assert lower.best([0.5, math.nan, 0.4, 0.4]) == 2  # the first of equals
    assert higher.best([0.9, 0.95, math.inf]) == 1
    with pytest.raises(InputError) as one:
        lower.best([math.nan])
    assert str(one.value) == (
        "Expected at least one trial with a finite validation score. Received: 1 trial, and "
        "its training diverged (its model predicts NaN or infinity; a learning_rate too high?)"
    )
    with pytest.raises(InputError, match=r"Received: 2 trials, and every one's training diverged"):
        higher.best([math.nan, -math.inf])


def test_a_non_finite_score_is_shown_as_a_diverged_trial() -> None:
    assert [shown_score(value) for value in (0.41234, math.nan, math.inf)] == [
        "0.4123",
        "diverged",
        "diverged",
    ]


def test_the_scores_plot_is_a_png(tmp_path: Path) -> None:
    from lib.core.sweep_plot import validation_scores

    target = validation_scores(
        ["seed 0", "seed 1"], [0.5, 0.4], 1, "mean_rmse", tmp_path / "scores.png"
    )
    assert target.read_bytes().startswith(b"\x89PNG") and list(tmp_path.iterdir()) == [target]
