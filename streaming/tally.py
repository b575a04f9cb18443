"""Column statistics and column files, kept beside the sync: in its own process, or a second.

The sync reads, types and writes rows; the statistics (count, moments, and above all the
sketches: hashing, counting, HyperLogLog, KLL) and the column files (``streaming.column_store``:
blocks of integers, floats and dictionary codes) are more than half of its work. Both take each
batch's typed values and give nothing back until the end, so for a file large enough to pay
for it, ``open_tally`` forks a process that holds the ColumnStats and the ColumnWriter and is
fed each batch over a pipe, and the two halves run on two cores::

    tally = open_tally(parallel=True, columns=(out_dir, 1))
    tally.update(0, "integer", [1, None, 2, 3], nulls=1)
    tally.end_batch()            # one frame a batch goes down the pipe
    stats = tally.results()      # {0: STATS}; columns.json and .bin written; the process reaped

A batch travels as one ``marshal`` frame (its values are ints, floats, strings, booleans and
None: marshal is the fastest stdlib codec for them, and gives back equal values of the same
types, so the column files are byte for byte those one process writes). The child shares the
parent's memory pages until it writes them; README's Performance section has what the pair
costs.

Failure leaves nothing behind and costs the sync nothing but time:

- the child closes every descriptor but stdio and its pipes (it must not keep a job's lock
  alive), and takes the default action on SIGTERM and SIGINT (it is no worker); it opens the
  column files itself, after that;
- it exits, quietly, when its input ends early, which happens when the parent ends in any way,
  even killed (an orphan is reaped by init: run the worker under one, e.g. ``docker --init``);
- a child that dies raises TallyFailed in the parent, and ``convert_csv`` does that pass again
  in one process (which rewrites the column files from the start); ``abort`` kills and reaps
  the child whenever the sync gives up or restarts.

On Python 3.12+ ``os.fork`` in a process with other threads warns (DeprecationWarning): the
sync's own process has none, but a caller with threads (a test run) would see it there.
"""

from __future__ import annotations

import marshal
import os
import signal
import struct
import sys
import traceback
from collections.abc import Sequence
from itertools import compress, repeat
from operator import is_not
from pathlib import Path
from typing import Any, BinaryIO

from streaming.column_store import ColumnWriter
from streaming.stats import ColumnStats

PARALLEL_BYTES = 4 << 20  # smaller files: forking costs more than it saves
_FRAME = struct.Struct("<I")
_PIPE_BUFFER = 1 << 16
_SIGNALS = {signal.SIGINT, signal.SIGTERM}

Update = tuple[int, str, list[Any], int]  # column, kind, values (None for nulls), nulls
Columns = tuple[Path, int] | None  # the column files' directory and the table's width


class TallyFailed(RuntimeError):
    """The statistics process died, or could not be started."""


class Tally:
    """The statistics of every column, and its column files (with ``columns``), kept in this
    process."""

    def __init__(self, columns: Columns = None) -> None:
        self.stats: dict[int, ColumnStats] = {}
        self.writer = ColumnWriter(*columns) if columns is not None else None
        self.states: dict[int, dict[str, Any]] = {}  # filled by ``results``
        self._batch: list[list[Any]] = []  # the batch's columns, for the writer
        self._kinds: list[str] = []
        self._nulls: list[int] = []

    def update(
        self,
        column: int,
        kind: str,
        values: list[Any],
        nulls: int,
        present: Sequence[Any] | None = None,
    ) -> None:
        """Add a batch of column ``column``'s values (of ``kind``, None for null), of which
        ``nulls`` are null, and ``present`` the others if the caller has them. Columns come in
        their order, every one of them each batch. A column with no values yet may change
        kind: its statistics start over, nulls kept."""
        if present is None:
            present = list(compress(values, map(is_not, values, repeat(None)))) if nulls else values
        if self.writer is not None:
            self._batch.append(values)
            self._kinds.append(kind)
            self._nulls.append(nulls)
        found = self.stats.get(column)
        if found is None:
            found = self.stats[column] = ColumnStats(kind)
        elif found.kind != kind:
            if found.count:
                raise ValueError(f"column {column} has {found.kind} values: it cannot turn {kind}")
            found = self.stats[column] = ColumnStats(kind, nulls=found.nulls)
        found.update(present, nulls)

    def end_batch(self) -> None:
        """Every column of a batch has been added: the column writer takes the batch."""
        if self.writer is not None:
            self.writer.add(self._batch, self._kinds, self._nulls)
            self._batch, self._kinds, self._nulls = [], [], []

    def results(self) -> dict[int, dict[str, Any]]:
        """Every column's STATS (``ColumnStats.result``) by position, once the column files are
        written and durable; the tally is done, and ``states`` holds what each was made from
        (``ColumnStats.state``: saved, so that an append can merge with it)."""
        if self.writer is not None:
            self.writer.close()
        self.states = {column: found.state() for column, found in self.stats.items()}
        return {column: found.result() for column, found in self.stats.items()}

    def abort(self) -> None:
        """Give up: close the column files (the restart or the caller removes them)."""
        if self.writer is not None:
            self.writer.abort()


class ForkedTally(Tally):
    """The same statistics and column files, kept by a forked process fed over a pipe."""

    def __init__(self, columns: Columns = None) -> None:
        super().__init__()  # no writer here: the child opens its own
        self._pending: list[Update] = []
        self._out: BinaryIO | None = None
        self._results: int | None = None
        self._pid: int | None = None
        values_read, values_write = os.pipe()
        results_read, results_write = os.pipe()
        # No signal between the fork and the child's own handlers may run the parent's code.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for fd in (values_read, values_write, results_read, results_write):
                os.close(fd)
            raise TallyFailed(f"could not start the statistics process: {exc}") from None
        if pid == 0:
            try:
                _serve(values_read, results_write, blocked, columns)
            finally:
                os._exit(1)  # never back into the parent's code
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self._pid = pid
        os.close(values_read)
        os.close(results_write)
        self._out = os.fdopen(values_write, "wb", buffering=_PIPE_BUFFER)
        self._results = results_read

    def update(
        self,
        column: int,
        kind: str,
        values: list[Any],
        nulls: int,
        present: Sequence[Any] | None = None,
    ) -> None:
        # The child finds the present values again: one list crosses the pipe, not two.
        self._pending.append((column, kind, values, nulls))

    def end_batch(self) -> None:
        frame = marshal.dumps(self._pending)
        self._pending = []
        try:
            assert self._out is not None
            self._out.write(_FRAME.pack(len(frame)))
            self._out.write(frame)
        except BrokenPipeError:
            self.abort()
            raise TallyFailed("the statistics process died") from None

    def results(self) -> dict[int, dict[str, Any]]:
        """Every column's STATS by position, once the child has taken the last batch."""
        try:
            assert self._out is not None and self._results is not None
            try:
                self._out.write(_FRAME.pack(0))  # the end
                self._out.close()
            except BrokenPipeError:
                pass  # the child is gone: its status says so below
            self._out = None
            with os.fdopen(self._results, "rb") as answer:
                self._results = None
                body = answer.read()
            status = self._reap()
        finally:
            self.abort()  # whatever went wrong above: nothing left open or unreaped
        if status != 0 or not body:
            raise TallyFailed(f"the statistics process failed (wait status {status})")
        found: dict[int, dict[str, Any]]
        found, self.states = marshal.loads(body)
        return found

    def abort(self) -> None:
        """Close what is open, and stop and reap the child if it still is (idempotent)."""
        if self._out is not None:
            out, self._out = self._out, None
            try:
                out.close()
            except BrokenPipeError:
                pass
        if self._results is not None:
            os.close(self._results)
            self._results = None
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()

    def _reap(self) -> int:
        assert self._pid is not None
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        return status


def open_tally(parallel: bool, columns: Columns = None) -> Tally:
    """A tally in a second process when ``parallel`` and this process may use a second CPU;
    in this one otherwise, or when the second process cannot be started. With ``columns``
    (directory, width) it writes the column files there too."""
    if parallel and len(os.sched_getaffinity(0)) > 1:
        try:
            return ForkedTally(columns)
        except TallyFailed:
            pass
    return Tally(columns)


def _serve(values_read: int, results_write: int, mask: set[Any], columns: Columns) -> None:
    """The child: tally every frame, answer the results, exit. Never returns."""
    for number in _SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    _close_others(values_read, results_write)
    try:
        tally = Tally(columns)
        with os.fdopen(values_read, "rb", buffering=_PIPE_BUFFER) as frames:
            while True:
                head = frames.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    os._exit(1)  # the parent ended before the last frame: nobody to answer
                (size,) = _FRAME.unpack(head)
                if size == 0:
                    break
                body = frames.read(size)
                if len(body) < size:
                    os._exit(1)  # ended mid-frame, the same
                for column, kind, values, nulls in marshal.loads(body):
                    tally.update(column, kind, values, nulls)
                tally.end_batch()
        with os.fdopen(results_write, "wb") as out:
            found = tally.results()
            out.write(marshal.dumps((found, tally.states)))
    except BrokenPipeError:
        os._exit(1)  # the parent stopped listening
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        os._exit(1)
    os._exit(0)


def _close_others(*keep: int) -> None:
    """Close every descriptor above stderr but ``keep``."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _max_fd())


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 4096
