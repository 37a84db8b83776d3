"""Progress on long operations: on stderr, and only when stderr is a terminal (never in a pipe, a log or a test)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

import click

Item = TypeVar("Item")
STEPS_PER_DRAW = 100  # redraw every so many items: a scan streams thousands a second


def on_terminal(stream: TextIO) -> bool:
    isatty: Callable[[], bool] | None = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def shown(items: Iterable[Item], err: TextIO | None, label: str, length: int | None = None) -> Iterator[Item]:
    """The items, unchanged, with a progress bar on err while they stream, if err is a terminal.

    click's bar counts items; with no length known (a scan) it shows how many so far.
    """
    if err is None or not on_terminal(err):
        yield from items
        return
    with click.progressbar(
        items, length=length, label=label, file=err, show_pos=True, show_eta=length is not None,
        update_min_steps=1 if length is not None and length < STEPS_PER_DRAW else STEPS_PER_DRAW,
    ) as bar:  # fmt: skip
        yield from bar
