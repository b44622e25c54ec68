"""Reading tidy demand files (CSV, CSV.gz, Parquet) in chunks, a group of whole series at a time.

A large file never sits in memory whole: it is read ``chunk_rows`` rows at a time and handed on
as groups of at most ``max_series`` complete series, so the caller can forecast and write each
group and let it go. That needs each series' rows to be together (sorted or grouped by id, as
exports usually are); :class:`NotGrouped` says when they are not, and :func:`read_all` is the
fallback. Every error names the file and line (CSV) or row (Parquet).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from restock.errors import DataError

PARQUET = (".parquet", ".pq")
ROW = "__row"      # each row's number in the file (from 1), for error messages


@dataclass
class Columns:
    """The names of the id, date and quantity columns in the file."""

    id: str = "item_id"
    date: str = "date"
    quantity: str = "quantity"

    @property
    def names(self) -> list[str]:
        return [self.id, self.date, self.quantity]


class NotGrouped(Exception):
    """A series' rows are not together in the file, so it cannot be streamed group by group."""


@dataclass
class _Stream:
    columns: Columns
    max_series: int
    done: set = field(default_factory=set)
    held: pd.DataFrame | None = None


def is_parquet(path: Path) -> bool:
    """Parquet by suffix; anything else is read as CSV (gzip by its .gz suffix)."""
    return path.suffix.lower() in PARQUET


def chunks(path: Path, columns: Columns, chunk_rows: int = 1_000_000,
           only: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The file's rows, a chunk at a time, each with its row number (from 1) in column ROW."""
    path = Path(path)
    wanted = only or columns.names
    if not path.is_file():
        raise DataError("no such file", record=str(path))
    try:
        if is_parquet(path):
            yield from _parquet_chunks(path, wanted, chunk_rows)
        else:
            yield from _csv_chunks(path, wanted, columns, chunk_rows)
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read: {_first_line(err)}", record=str(path)) from None


def _csv_chunks(path: Path, wanted: list[str], columns: Columns,
                chunk_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    header = pd.read_csv(path, nrows=0).columns
    _check_columns(path, header, wanted)
    reader = pd.read_csv(path, usecols=wanted, chunksize=chunk_rows, dtype={columns.id: str},
                         keep_default_na=True)
    row = 1
    for frame in reader:
        frame[ROW] = np.arange(row, row + len(frame))
        yield frame
        row += len(frame)


def _parquet_chunks(path: Path, wanted: list[str],
                    chunk_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise DataError(f"not a readable Parquet file: {_first_line(err)}",
                        record=str(path)) from None
    _check_columns(path, file.schema_arrow.names, wanted)
    row = 1
    for batch in file.iter_batches(batch_size=chunk_rows, columns=wanted):
        frame = batch.to_pandas(date_as_object=False)
        frame[ROW] = np.arange(row, row + len(frame))
        yield frame
        row += len(frame)


def _check_columns(path: Path, header, wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in set(header)]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} (found: "
                        f"{', '.join(map(str, header)) or 'none'})", record=str(path))


def date_range(path: Path, columns: Columns, chunk_rows: int = 2_000_000
               ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last date in the file (one pass over the date column only), None if empty.

    Every group of series is then laid on the same period grid, so a series' forecast does not
    depend on which others share its chunk.
    """
    low = high = None
    for frame in chunks(path, columns, chunk_rows, only=[columns.date]):
        dates = _parse_dates(frame, columns.date, path)
        if len(dates):
            low = dates.min() if low is None else min(low, dates.min())
            high = dates.max() if high is None else max(high, dates.max())
    return None if low is None else (low, high)


def _parse_dates(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    from restock.forecast.panel import _dates

    try:
        return _dates(frame[column])
    except DataError as err:
        raise located(err, path, frame) from None


def located(err: DataError, path: Path, frame: pd.DataFrame) -> DataError:
    """A frame-relative error ``row k: ...`` as ``file:line: ...`` (CSV) or ``file row n: ...``."""
    match = re.fullmatch(r"row (\d+)", err.record or "")
    if not match:
        return DataError(err.message, record=str(path))
    row = int(frame[ROW].iloc[int(match.group(1)) - 1])
    place = f"{path}:{row + 1}" if not is_parquet(Path(path)) else f"{path} row {row}"
    return DataError(err.message, record=place)


def groups(path: Path, columns: Columns, max_series: int = 20_000,
           chunk_rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """Rows of whole series, in groups of about ``max_series`` series.

    Raises NotGrouped as soon as a series' rows turn out to be split across the file.
    """
    stream = _Stream(columns=columns, max_series=max_series)
    pending: list[pd.DataFrame] = []
    pending_series = 0
    for frame in chunks(path, columns, chunk_rows):
        complete, count = _complete(stream, frame)
        if count:
            pending.append(complete)
            pending_series += count
        if pending_series >= max_series:
            yield pd.concat(pending, ignore_index=True)
            pending, pending_series = [], 0
    if stream.held is not None and len(stream.held):
        pending.append(stream.held)
    if pending:
        yield pd.concat(pending, ignore_index=True)


def _complete(stream: _Stream, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows of the series that end inside this chunk; the last series waits for the next."""
    if stream.held is not None and len(stream.held):
        frame = pd.concat([stream.held, frame], ignore_index=True)
    ids = frame[stream.columns.id].astype(str).to_numpy()
    if not len(ids):
        return frame, 0
    change = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    runs = ids[np.concatenate([[0], change])]
    if len(set(runs)) != len(runs) or stream.done.intersection(runs):
        raise NotGrouped("the rows of a series are not together in the file")
    cut = change[-1] if len(change) else 0
    stream.held = frame.iloc[cut:]
    stream.done.update(runs[:-1])
    return frame.iloc[:cut], len(runs) - 1


def read_all(path: Path, columns: Columns, chunk_rows: int = 1_000_000) -> pd.DataFrame:
    """Every row of the file (chunked reading, one compact frame at the end)."""
    parts = list(chunks(path, columns, chunk_rows))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns.names)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__
