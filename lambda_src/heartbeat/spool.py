"""A spool: rows written once and read back in order, in memory up to a bound and then in a temporary file.

The sweeper spools the runners it may flag while it counts the whole fleet, because the plan that
decides them needs the whole census first. Held as Python objects, a million such runners would
take hundreds of megabytes; spooled, the sweeper's memory stays flat however many there are (Lambda's
/tmp takes the rest, see infra/stack.py).

Rows are pickled: the file is this process's own, written and read by it alone, and pickle is the
quickest of the standard library's formats here (about a third of JSON's time per row).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from typing import Any

MEMORY_BYTES = 8 * 1024 * 1024  # past this, rows go to a file


class Spool:
    """Rows (tuples of plain values), appended, then read back in the order written, any number of times."""

    def __init__(self, memory_bytes: int = MEMORY_BYTES) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=memory_bytes, mode="w+b")  # noqa: SIM115 - closed by close()
        self._pickler = pickle.Pickler(self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._rows = 0

    def append(self, row: tuple[Any, ...]) -> None:
        self._pickler.dump(row)
        self._pickler.clear_memo()  # each row stands alone: no references back to earlier rows
        self._rows += 1

    def __len__(self) -> int:
        return self._rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        """The rows from the first. Appending waits until the reading is done."""
        self._file.flush()
        self._file.seek(0)
        unpickler = pickle.Unpickler(self._file)  # noqa: S301 - this process's own file, written just above
        try:
            for _ in range(self._rows):
                yield unpickler.load()
        finally:
            self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Spools:
    """Spools side by side, one per partition (the sweeper's lanes), within one memory bound in all."""

    def __init__(self, partitions: int, memory_bytes: int = MEMORY_BYTES) -> None:
        self._spools = [Spool(memory_bytes // partitions) for _ in range(partitions)]

    def append(self, partition: int, row: tuple[Any, ...]) -> None:
        self._spools[partition].append(row)

    def __getitem__(self, partition: int) -> Spool:
        return self._spools[partition]

    def __len__(self) -> int:
        """The rows in every partition."""
        return sum(len(spool) for spool in self._spools)

    def close(self) -> None:
        for spool in self._spools:
            spool.close()

    def __enter__(self) -> Spools:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
