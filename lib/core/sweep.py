"""A sweep's trial grid: seeds times recipe values, each trial a recipe the schema accepts.

`--seeds 0-7` and `--set learning_rate=0.01,0.003` are parsed here, against the recipe's own
pydantic schema: a field is known when the schema has it (a field added to the recipe can be
swept at once, no list to update), a value is valid when the field's type and bounds accept
it, and a combination is valid when the recipe's validators do. Every refusal is one
`InputError` line naming the option as the user typed it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from lib.core.errors import InputError

SEED_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
NONE_WORDS = ("none", "null")
MAX_TRIALS = 1000
"""More trials than this is a typing slip (`--seeds 0-99999`), not a sweep anyone meant."""


def shown_score(value: float) -> str:
    """A validation score as the sweep's tables show it; a non-finite one is a diverged trial.

    The validation metrics of both pipelines are NaN only for a model that predicts NaN or
    infinity, which is what a diverged training leaves behind.
    """
    return f"{value:.4f}" if math.isfinite(value) else "diverged"


@dataclass(frozen=True)
class ValidationScore:
    """The number a sweep picks its winner by, computed on validation rows (never test rows).

    Attributes:
        name: the metric's key in the validation metrics.
        lower_is_better: direction of `name`.
    """

    name: str
    lower_is_better: bool

    def best(self, scores: Sequence[float]) -> int:
        """Index of the best finite score; the first of equals (grid order) wins a tie."""
        finite = [(i, s) for i, s in enumerate(scores) if math.isfinite(s)]
        if not finite:
            if len(scores) == 1:
                received = "1 trial, and its training diverged (its model predicts"
            else:
                received = (
                    f"{len(scores)} trials, and every one's training diverged (their models predict"
                )
            raise InputError(
                "Expected at least one trial with a finite validation score. Received: "
                f"{received} NaN or infinity; a learning_rate too high?)"
            )
        sign = 1 if self.lower_is_better else -1
        return min(finite, key=lambda pair: (sign * pair[1], pair[0]))[0]


@dataclass(frozen=True)
class Trial:
    """One point of the grid: a seed and the recipe values it sets, and the full recipe.

    Attributes:
        seed: seeds the split (or pairs) and the weights, as in `trainflow run --seed`.
        values: the swept fields only, as validated (what tells trials apart).
        recipe: the preset with `values` applied.
    """

    seed: int
    values: Mapping[str, Any]
    recipe: BaseModel

    @property
    def label(self) -> str:
        """``seed 3, learning_rate=0.01``: how tables and task runs name the trial."""
        shown = (f"{key}={_shown(value)}" for key, value in self.values.items())
        return ", ".join([f"seed {self.seed}", *shown])


def _shown(value: Any) -> str:
    """A value as `--set` takes it back: ``["X1","X6"]``, ``none``, ``0.01``."""
    if value is None:
        return NONE_WORDS[0]
    if isinstance(value, list | tuple):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0-7``, ``3``, ``0,2,5`` or ``0-3,8`` as seeds in the order given, without repeats."""
    seeds: list[int] = []
    for part in text.split(","):
        found = SEED_RANGE.match(part.strip())
        if found is None:
            raise InputError(
                f"--seeds {text}: expected seeds such as 0-7, 3 or 0,2,5 (whole numbers >= 0)"
            )
        first, last = int(found[1]), int(found[2] or found[1])
        if last < first:
            raise InputError(f"--seeds {text}: a range runs upwards, {last}-{first} not {part}")
        seeds.extend(seed for seed in range(first, last + 1) if seed not in seeds)
        if len(seeds) > MAX_TRIALS:
            raise InputError(f"--seeds {text}: more than {MAX_TRIALS} seeds")
    return tuple(seeds)


def split_values(text: str) -> list[str]:
    """Split ``v1,v2`` at commas outside brackets, so a tuple value ``["X1","X6"]`` stays whole."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += (char in "[(") - (char in "])")
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    return [value.strip() for value in values]


def _candidates(text: str) -> list[Any]:
    """What `text` may mean, most literal reading last: None, a JSON value, the text itself."""
    if text.lower() in NONE_WORDS:
        return [None]
    try:
        return [json.loads(text), text]
    except ValueError:
        return [text]


def _field_value(schema: type[BaseModel], key: str, text: str, option: str) -> Any:
    """`text` as a value of `schema`'s field `key`, checked against its type and bounds."""
    field = schema.model_fields[key]
    annotated: Any = field.annotation  # with its bounds (gt=0, ...) where it has any
    if field.metadata:
        annotated = Annotated[(field.annotation, *field.metadata)]
    adapter: TypeAdapter[Any] = TypeAdapter(annotated)
    problem = ""
    for candidate in _candidates(text):
        try:
            return adapter.validate_python(candidate)
        except ValidationError as error:
            problem = problem or error.errors()[0]["msg"]
    raise InputError(f"--set {option}: {key}={text!r} is not valid: {_sentence(problem)}")


def parse_values(assignments: Sequence[str], schema: type[BaseModel]) -> dict[str, tuple[Any, ...]]:
    """``["learning_rate=0.01,0.003", ...]`` as ``{field: (values...)}`` of `schema`'s fields.

    A field set twice keeps its last values, as command-line options do.
    """
    grid: dict[str, tuple[Any, ...]] = {}
    for option in assignments:
        key, sign, text = option.partition("=")
        key = key.strip()
        if not sign or not key or not text.strip():
            raise InputError(f"--set {option}: expected FIELD=VALUE[,VALUE...], e.g. epochs=5,10")
        if key not in schema.model_fields:
            known = ", ".join(schema.model_fields)
            raise InputError(f"--set {option}: the recipe has no field {key!r}; it has {known}")
        values: list[Any] = []
        for item in split_values(text):
            value = _field_value(schema, key, item, option)
            if value not in values:
                values.append(value)
        grid[key] = tuple(values)
    return grid


def trial_grid(
    base: BaseModel, seeds: Sequence[int], values: Mapping[str, Sequence[Any]]
) -> tuple[Trial, ...]:
    """Every seed with every combination of `values`, applied to the recipe `base`.

    Seeds vary slowest, so the trials of one seed (one split) sit together. A combination
    the recipe's own validators refuse (e.g. a weight decay with SGD) is an `InputError`.
    """
    if not seeds:
        raise InputError("--seeds: expected at least one seed")
    combinations = list(itertools.product(*values.values()))
    if len(seeds) * len(combinations) > MAX_TRIALS:
        raise InputError(
            f"{len(seeds)} seeds x {len(combinations)} recipe combinations is more than "
            f"{MAX_TRIALS} trials"
        )
    schema = type(base)
    recipes = []
    for combination in combinations:
        chosen = dict(zip(values, combination, strict=True))
        try:
            recipe = schema.model_validate({**base.model_dump(), **chosen})
        except ValidationError as error:
            setting = " ".join(f"{k}={v}" for k, v in chosen.items())
            raise InputError(f"--set {setting}: {_sentence(error.errors()[0]['msg'])}") from None
        recipes.append((chosen, recipe))
    return tuple(
        Trial(seed=seed, values=chosen, recipe=recipe)
        for seed in seeds
        for chosen, recipe in recipes
    )


def _sentence(message: str) -> str:
    """Pydantic's message as the end of our line: no "Value error, " prefix, lower case first."""
    message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def plan_trials(
    presets: Mapping[str, BaseModel], preset: str, seeds: str, assignments: Sequence[str]
) -> tuple[Trial, ...]:
    """The grid of a sweep from its options: `--preset`, `--seeds` and each `--set`."""
    base = presets[preset]
    return trial_grid(base, parse_seeds(seeds), parse_values(assignments, type(base)))
