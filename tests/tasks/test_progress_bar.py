"""The training bar: on Prefect's console only, within 80 columns, under the log lines."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from prefect.logging.handlers import PrefectConsoleHandler
from rich.console import Console
from rich.theme import Theme

from tasks.progress_bar import EpochBar, terminal_console

CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours, cursor moves, erase-line


def _screen_lines(written: str) -> list[str]:
    """What was written, as the pieces between carriage returns and newlines, codes removed."""
    return [piece for piece in re.split(r"[\r\n]", CONTROL.sub("", written)) if piece.strip()]


@pytest.fixture
def console_handler() -> Iterator[PrefectConsoleHandler]:
    """A Prefect console handler on the root logger, as Prefect's logging.yml sets one up."""
    root = logging.getLogger()
    handler = PrefectConsoleHandler(stream=io.StringIO())
    saved = root.handlers[:]
    root.handlers = [handler]
    yield handler
    root.handlers = saved


def test_no_bar_where_stderr_is_not_a_terminal(console_handler: PrefectConsoleHandler) -> None:
    assert terminal_console() is None


def test_no_bar_when_the_console_log_is_silenced(console_handler: PrefectConsoleHandler) -> None:
    console_handler.console = Console(file=io.StringIO(), force_terminal=True)
    assert terminal_console() is console_handler.console
    console_handler.addFilter(lambda record: False)  # trainflow run --quiet
    assert terminal_console() is None
    console_handler.filters.clear()
    console_handler.setLevel(logging.WARNING)  # PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL
    assert terminal_console() is None


def test_the_bar_fits_80_columns_and_log_lines_print_whole_above_it() -> None:
    written = io.StringIO()
    # Prefect's console: a theme of its own, without rich's default styles.
    console = Console(file=written, force_terminal=True, width=80, theme=Theme({}, inherit=False))
    bar = EpochBar(console, "siamese")
    for epoch in range(1, 301):
        bar.show(epoch, 300, loss=0.0009802 * epoch, val_loss=None if epoch == 1 else 0.08566)
        if epoch % 30 == 0:
            console.print(f"12:00:00.000 | INFO | Task run 'train' - epoch {epoch}/300: ...")
    bar.close()

    lines = _screen_lines(written.getvalue())
    assert max(map(len, lines)) <= 80
    assert "epoch   1/300  loss 0.00098  val_loss –  ETA --:--" in lines[0]
    for epoch in range(30, 301, 30):
        assert f"12:00:00.000 | INFO | Task run 'train' - epoch {epoch}/300: ..." in lines
    assert re.fullmatch(
        r"siamese ━+ epoch 300/300  loss 0\.294  val_loss 0\.0857  ETA \d\d:\d\d", lines[-1]
    )
