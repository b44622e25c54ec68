"""Reading tidy demand files (CSV, CSV.gz, Parquet) in chunks, a group of whole series at a time.

A large file never sits in memory whole: it is read ``chunk_rows`` rows at a time and handed on
as groups of at most ``max_series`` complete series, so the caller can forecast and write each
group and let it go. That needs each series' rows to be together (sorted or grouped by id, as
exports usually are); :class:`NotGrouped` says when they are not, and :func:`read_all` is the
fallback. Every error names the file and line (CSV) or row (Parquet).
"""

from __future__ import annotations

import io
import itertools
import re
import zlib
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from restock.errors import DataError

if TYPE_CHECKING:
    from restock.forecast.panel import Panel

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


class NotPlainCsv(Exception):
    """Arrow's CSV reader cannot take the file as ISO dates and numbers (a date with a time of
    day, a quantity that is not a number, a missing column...): read it with pandas instead,
    which applies restock's rules and names the bad line."""


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
    with pd.read_csv(path, usecols=wanted, chunksize=chunk_rows,
                     dtype={columns.id: "category"}, keep_default_na=True) as reader:
        row = 1
        for frame in reader:
            frame[ROW] = np.arange(row, row + len(frame))
            yield frame
            row += len(frame)


def _parquet_chunks(path: Path, wanted: list[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    file = _open_parquet(path, wanted)
    try:
        row = 1
        for batch in file.iter_batches(batch_size=chunk_rows, columns=wanted):
            frame = batch.to_pandas(date_as_object=False)
            frame[ROW] = np.arange(row, row + len(frame))
            yield frame
            row += len(frame)
    finally:
        file.close()


def _open_parquet(path: Path, wanted: list[str]):
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path, read_dictionary=[wanted[0]] if len(wanted) > 1 else None)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a bad file
        raise DataError(f"not a readable Parquet file: {_first_line(err)}",
                        record=str(path)) from None
    _check_columns(path, file.schema_arrow.names, wanted)
    return file


def _check_columns(path: Path, header, wanted: list[str]) -> None:
    missing = [c for c in wanted if c not in set(header)]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)} (found: "
                        f"{', '.join(map(str, header)) or 'none'})", record=str(path))


def date_range(path: Path, columns: Columns, chunk_rows: int = 2_000_000,
               share: tuple[int, int] = (0, 1)) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The first and last date in the file (one pass over the date column only), None if empty.

    Every group of series is then laid on the same period grid, so a series' forecast does not
    depend on which others share its chunk. ``share=(k, n)``: only the lines of an uncompressed
    CSV that start in its k-th of n byte ranges (n processes cover the file once; Arrow reads
    them, and NotPlainCsv says where it cannot).
    """
    path = Path(path)
    known = _parquet_date_statistics(path, columns) if is_parquet(path) else None
    if known is not None:
        return known
    if not is_parquet(path):
        try:
            source = _Lines(path, *_byte_range(path, *share)) if share[1] > 1 else None
            return _csv_date_range(path, columns, chunk_rows, source)
        except NotPlainCsv:
            if share[1] > 1:
                raise
            # pandas reads it below, and names a bad date's line
    low = high = None
    for frame in chunks(path, columns, chunk_rows, only=[columns.date]):
        dates = _parse_dates(frame, columns.date, path)
        if len(dates):
            low = dates.min() if low is None else min(low, dates.min())
            high = dates.max() if high is None else max(high, dates.max())
    return None if low is None else (low, high)


def _parquet_date_statistics(path: Path, columns: Columns
                             ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The date range from the file's own statistics, when it holds dates (not text) with a
    minimum and maximum for every row group and no missing date; else None (read the column)."""
    import pyarrow as pa

    if not path.is_file():
        return None
    with closing(_open_parquet(path, columns.names)) as file:
        where = file.schema_arrow.get_field_index(columns.date)
        if not pa.types.is_date32(file.schema_arrow.field(where).type):
            return None
        meta = file.metadata
        column = file.schema.names.index(columns.date) if columns.date in file.schema.names \
            else -1
        if column < 0 or meta.num_rows == 0:
            return None
        stats = [meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)]
        if any(s is None or not s.has_min_max or s.null_count for s in stats):
            return None
        return (pd.Timestamp(min(s.min for s in stats)), pd.Timestamp(max(s.max for s in stats)))


def _csv_date_range(path: Path, columns: Columns, chunk_rows: int, source=None
                    ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    import pyarrow as pa

    low = high = None
    for batch in _csv_batches(path, columns, chunk_rows, only=[columns.date], source=source):
        days = batch.column(0)
        if days.null_count:
            raise NotPlainCsv("a missing date")
        if len(days):
            days = days.cast(pa.int32()).to_numpy()
            low = days.min() if low is None else min(low, days.min())
            high = days.max() if high is None else max(high, days.max())
    if low is None:
        return None
    return (pd.Timestamp(np.datetime64(int(low), "D")), pd.Timestamp(np.datetime64(int(high), "D")))


def _csv_batches(path: Path, columns: Columns, chunk_rows: int, only: list[str] | None = None,
                 source=None):
    """A CSV file's columns as Arrow batches, read by Arrow on one thread: ids as dictionary
    text, dates as ISO dates, quantities as numbers, empty cells as nulls. Raises NotPlainCsv
    where a cell does not fit (or the file does not suit Arrow at all), wherever it comes.
    ``source``: a binary file object holding the header line and some of the file's lines
    (default: the whole file)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    wanted = only or columns.names
    _check_columns(path, _csv_header(path), wanted)
    kinds = {columns.id: pa.dictionary(pa.int32(), pa.string()), columns.date: pa.date32(),
             columns.quantity: pa.float64()}
    try:
        stream = source if source is not None else \
            pa.input_stream(str(path), compression="detect")
        # Blocks of about 4 bytes per chunk row (4 MB by default): 32 MB blocks held 850 MB
        # at the peak on 50k series, 4 MB ones 520 MB, in the same time.
        reader = pacsv.open_csv(stream, read_options=pacsv.ReadOptions(
            use_threads=False, block_size=max(chunk_rows * 4, 1 << 16)),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted, column_types={c: kinds[c] for c in wanted},
                strings_can_be_null=True))
        with closing(stream):
            yield from reader
    except (pa.ArrowException, OSError, ValueError) as err:
        raise NotPlainCsv(_first_line(err)) from None


class _Lines(io.RawIOBase):
    """A CSV file's header line followed by its bytes [begin, stop): a file of its own."""

    def __init__(self, path: Path, header: bytes, begin: int, stop: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed with this object
        self._file.seek(begin)
        self._header, self._left = header, stop - begin

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._header:
            n = min(len(buffer), len(self._header))
            buffer[:n], self._header = self._header[:n], self._header[n:]
            return n
        want = min(len(buffer), self._left)
        n = self._file.readinto(memoryview(buffer)[:want]) if want else 0
        self._left -= n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


class _ByteRangeShare:
    """Process k of n's share of an uncompressed CSV file: the lines that start in bytes
    [k B / n, (k + 1) B / n) of its B bytes after the header. As with row groups, a series
    belongs to the share it starts in: the leading lines of the series open before the share
    are left to the share before, and the share's last series is read on past its end.

    A share cannot see whether its series have lines in another share; the caller checks that
    no id came from two shares (:func:`restock.forecast.run.forecast_file` does)."""

    def __init__(self, path: Path, columns: Columns, mine: int, every: int,
                 chunk_rows: int) -> None:
        self.path, self.columns, self.chunk_rows = path, columns, chunk_rows
        self.size = path.stat().st_size
        self.header, self.begin, self.stop = _byte_range(path, mine, every)
        with open(path, "rb") as file:
            body = len(self.header)
            self.first_row = 1 + _count_lines(file, body, self.begin)
            self.before = self._last_id_before(file, body)

    def _lines(self, begin: int, stop: int) -> _Lines:
        return _Lines(self.path, self.header, begin, stop)

    def _rows(self, begin: int, stop: int):
        return _csv_batches(self.path, self.columns, self.chunk_rows,
                            source=self._lines(begin, stop))

    def _last_id_before(self, file, body: int):
        if self.begin <= body:
            return None
        start = max(body, self.begin - (1 << 16))
        while True:       # back to the start of the line that ends at begin
            file.seek(start)
            at = file.read(self.begin - 1 - start).rfind(b"\n")
            if at >= 0 or start == body:
                start += at + 1
                break
            start = max(body, start - (1 << 20))
        ids = _joined_column(self._rows(start, self.begin), 0)
        return _runs(ids)[1][-1] if len(ids) else None

    def batches(self):
        """The share's rows as Arrow batches (see the class). The leading lines of the series
        open before the share are skipped here, so :attr:`first_row` is then the row number of
        the first batch's first row."""
        rows = self._rows(self.begin, self.stop)
        first = self._past_open_series(rows)
        return self._own(first, rows) if first is not None else iter(())

    def _past_open_series(self, rows):
        """The first batch (sliced) after the lines of the series open before the share."""
        for batch in rows:
            lead = 0 if self.before is None else _leading_rows(batch.column(0), self.before)
            self.first_row += lead
            if lead < len(batch):
                return batch.slice(lead)
        return None

    def _own(self, first, rows):
        last = None
        for batch in itertools.chain([first], rows):
            if len(batch):
                last = _last_id(batch)
            yield batch
        if last is None or self.stop >= self.size:
            return
        for batch in self._rows(self.stop, self.size):    # the last series' lines beyond
            lead = _leading_rows(batch.column(0), last)
            if lead:
                yield batch.slice(0, lead)
            if lead < len(batch):
                return


def _leading_rows(ids, name) -> int:
    """How many rows at the start of the id column ``ids`` belong to the series ``name``."""
    starts, names = _runs(ids)
    if not names or names[0] != name:
        return 0
    return int(starts[1]) if len(names) > 1 else len(ids)


def _last_id(batch) -> str:
    """The id on the last row of a (non-empty) batch."""
    return _runs(batch.column(0).slice(len(batch) - 1))[1][0]


def _joined_column(batches, index: int):
    """One column of all ``batches`` as one Arrow array."""
    import pyarrow as pa

    parts = [batch.column(index) for batch in batches]
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def _byte_range(path: Path, mine: int, every: int) -> tuple[bytes, int, int]:
    """(header line, begin, stop): the bytes of the lines that start in the k-th of n equal
    byte ranges of the file after its header."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        header = file.readline()
        body = file.tell()
        span = size - body
        return (header, _line_start(file, body + span * mine // every, body),
                _line_start(file, body + span * (mine + 1) // every, body))


def _line_start(file, position: int, body: int) -> int:
    """The first line start at or after ``position`` (a byte offset past the header)."""
    if position <= body:
        return body
    file.seek(position - 1)
    file.readline()                 # the rest of the line that holds position - 1
    return file.tell()


def _count_lines(file, begin: int, stop: int) -> int:
    file.seek(begin)
    count, left = 0, stop - begin
    while left > 0:
        block = file.read(min(left, 1 << 24))
        if not block:
            break
        count += block.count(b"\n")
        left -= len(block)
    return count


def _csv_header(path: Path):
    if not path.is_file():
        raise DataError("no such file", record=str(path))
    try:
        return pd.read_csv(path, nrows=0).columns
    except (OSError, ValueError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read: {_first_line(err)}", record=str(path)) from None


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
    index = int(match.group(1)) - 1
    row = int(frame[ROW].iloc[index]) if ROW in frame else frame.attrs["first_row"] + index
    place = f"{path}:{row + 1}" if not is_parquet(Path(path)) else f"{path} row {row}"
    return DataError(err.message, record=place)


def groups(path: Path, columns: Columns, max_series: int = 20_000,
           chunk_rows: int = 1_000_000) -> Iterator[pd.DataFrame]:
    """Rows of whole series, in groups of about ``max_series`` series.

    Raises NotGrouped as soon as a series' rows turn out to be split across the file.
    """
    if is_parquet(Path(path)):
        yield from _parquet_groups(Path(path), columns, max_series, chunk_rows)
        return
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


def panels(path: Path, columns: Columns, *, freq: str, start=None, end=None,
           max_series: int = 2_000, chunk_rows: int = 1_000_000,
           share: tuple[int, int] = (0, 1), csv_by_arrow: bool = True) -> Iterator[Panel]:
    """The file's series as dense panels (see :func:`restock.forecast.to_panel`), a group of
    about ``max_series`` whole series at a time; errors name the file and line or row.

    Parquet groups go from Arrow to the panel directly where the column types allow (see
    :func:`restock.forecast.panel.arrow_panel`); so do CSV groups, read by Arrow's reader,
    unless ``csv_by_arrow`` is False (then pandas reads them). Raises NotGrouped like
    :func:`groups`, and NotPlainCsv where Arrow cannot read a CSV cell (groups may have been
    yielded by then: read the file again with ``csv_by_arrow=False``).
    ``share=(k, n)``: the k-th of n parts of the file, so n processes with k = 0..n-1 cover it
    once, in order. A Parquet file with at least n row groups is cut into n runs of row groups;
    process k reads its own (a series that crosses into the next run is finished by the process
    it started in) and then only the id column of the rest, to check that none of its series
    has rows elsewhere. Otherwise every process reads the whole file and lays out groups k,
    k + n, ... of it.
    """
    mine, every = share
    if not 0 <= mine < every:
        raise ValueError(f"share must be (k, n) with 0 <= k < n (got {share!r})")
    grid = {"freq": freq, "start": start, "end": end}
    path = Path(path)
    if not is_parquet(path) and csv_by_arrow:
        if every > 1 and not _compressed(path):
            lines = _ByteRangeShare(path, columns, mine, every, chunk_rows)
            own = lines.batches()           # first: it settles where the share's rows begin
            for batches, first_row in _arrow_batch_groups(own, max_series,
                                                          first_row=lines.first_row):
                yield _panel_of(batches, first_row, path, columns, grid)
            return
        batch_groups = _arrow_batch_groups(_csv_batches(path, columns, chunk_rows), max_series)
        for index, (batches, first_row) in enumerate(batch_groups):
            if index % every == mine:
                yield _panel_of(batches, first_row, path, columns, grid)
        return
    if not is_parquet(path):
        for index, frame in enumerate(groups(path, columns, max_series, chunk_rows)):
            if index % every == mine:
                yield located_panel(frame, path, columns, **grid)
        return
    with closing(_open_parquet(path, columns.names)) as file:
        if every > 1 and _enough_row_groups(file, every):
            part = _RowGroupShare(file, columns, mine, every)
            seen: set = set()
            for batches, first_row in _arrow_batch_groups(
                    part.batches(chunk_rows), max_series, seen, part.first_row):
                yield _panel_of(batches, first_row, path, columns, grid)
            part.check_elsewhere(seen, chunk_rows)
            return
        batch_groups = _arrow_batch_groups(_batches(file, columns, chunk_rows), max_series)
        for index, (batches, first_row) in enumerate(batch_groups):
            if index % every == mine:
                yield _panel_of(batches, first_row, path, columns, grid)


def shared_in_runs(path: Path, columns: Columns, every: int, csv_by_arrow: bool = True) -> bool:
    """Whether :func:`panels` with ``share=(k, every)`` gives process k a run of the file
    (groups in file order, process by process) rather than every ``every``-th group."""
    path = Path(path)
    if every < 2:
        return False
    if not is_parquet(path):
        return csv_by_arrow and not _compressed(path)
    with closing(_open_parquet(path, columns.names)) as file:
        return _enough_row_groups(file, every)


def _compressed(path: Path) -> bool:
    return path.suffix.lower() in (".gz", ".bz2", ".zst", ".lz4")


def _enough_row_groups(file, every: int) -> bool:
    return file.metadata.num_row_groups >= every


def _panel_of(batches: list, first_row: int, path: Path, columns: Columns, grid: dict) -> Panel:
    import pyarrow as pa

    from restock.forecast.panel import arrow_panel

    table = pa.Table.from_batches(batches)
    panel = arrow_panel(table, id_col=columns.id, date_col=columns.date,
                        value_col=columns.quantity, **grid)
    return panel if panel is not None else \
        located_panel(_to_frame(batches, first_row), path, columns, **grid)


class _RowGroupShare:
    """Process k of n's run of a Parquet file's row groups: [k R / n, (k + 1) R / n) of R.

    A series whose rows cross from one run into the next belongs to the run it starts in, so
    each process decodes about 1/n of the file, not all of it (1M series on two processes:
    each decoded the whole 2.9 s file to find its every other group)."""

    def __init__(self, file, columns: Columns, mine: int, every: int) -> None:
        meta = file.metadata
        count = meta.num_row_groups
        self.file, self.columns = file, columns
        groups = range(mine * count // every, (mine + 1) * count // every)
        sizes = [meta.row_group(g).num_rows for g in range(count)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.stop = int(self.offsets[groups.stop])     # where the next run's rows begin
        self.begin = self._after_run_before(groups.start)
        self.end = self.begin                          # where this process stops reading
        self.first_row = 1 + self.begin                # as the file counts rows, from 1

    def _group_of(self, row: int) -> int:
        return int(np.searchsorted(self.offsets, row, side="right")) - 1

    def _ids(self, low: int, high: int, chunk_rows: int):
        """The id column's rows [low, high) as Arrow arrays, read a batch at a time."""
        if low >= high:
            return
        first = self._group_of(low)
        row = int(self.offsets[first])
        for batch in self.file.iter_batches(batch_size=chunk_rows, columns=[self.columns.id],
                                            row_groups=range(first, self._group_of(high - 1)
                                                             + 1)):
            at, row = row, row + len(batch)
            lo, hi = max(low - at, 0), min(high - at, len(batch))
            if lo < hi:
                yield batch.column(0).slice(lo, hi - lo)

    def _after_run_before(self, group: int) -> int:
        """The first row of the run that is not the series the run before left open."""
        begin = int(self.offsets[group])
        if group == 0 or begin >= self.offsets[-1]:
            return begin
        before = _runs(next(self._ids(begin - 1, begin, 1 << 20)))[1][0]
        for ids in self._ids(begin, int(self.offsets[-1]), 1 << 20):
            lead = _leading_rows(ids, before)
            begin += lead
            if lead < len(ids):
                break
        return begin

    def batches(self, chunk_rows: int):
        """This run's rows as Arrow batches, from :attr:`begin` to the end of the series that is
        open where the next run starts; :attr:`end` is then where reading stopped."""
        if self.begin >= self.stop:
            return                  # the whole run continues a series begun before it
        first = self._group_of(self.begin)
        row, previous = int(self.offsets[first]), None
        for batch in self.file.iter_batches(batch_size=chunk_rows, columns=self.columns.names,
                                            row_groups=range(first, len(self.offsets) - 1)):
            at, row = row, row + len(batch)
            if row <= self.begin:
                continue
            if at < self.begin:
                batch, at = batch.slice(self.begin - at), self.begin
            if row <= self.stop:
                previous = batch
                yield batch
                continue
            until = self._open_series_end(batch, at, previous)
            if until:
                yield batch.slice(0, until)
            if until < len(batch):
                self.end = at + until
                return
            previous = batch
        self.end = row

    def _open_series_end(self, batch, at: int, previous) -> int:
        """How many leading rows of ``batch`` (which reaches past :attr:`stop`) are this run's:
        up to the end of the series open at the last row before :attr:`stop`."""
        own = self.stop - at
        if own <= 0:
            return 0 if previous is None else \
                _leading_rows(batch.column(0), _last_id(previous))
        starts = _runs(batch.column(0))[0]
        run = int(np.searchsorted(starts, own - 1, side="right")) - 1
        return int(starts[run + 1]) if run + 1 < len(starts) else len(batch)

    def check_elsewhere(self, seen: set, chunk_rows: int) -> None:
        """NotGrouped when a series of this run has rows anywhere else in the file (read from
        the id column alone)."""
        if not seen:
            return
        for low, high in ((0, self.begin), (self.end, int(self.offsets[-1]))):
            for ids in self._ids(low, high, chunk_rows):
                if seen.intersection(_runs(ids)[1]):
                    raise NotGrouped("the rows of a series are not together in the file")


def reuse_freed_memory(largest: int = 32 << 20) -> bool:
    """Ask the C library to keep freed blocks of up to ``largest`` bytes for reuse.

    Forecasting a large file allocates and frees the same big arrays for every group of
    series. By default glibc hands blocks that big back to the system and maps fresh pages
    for the next group, and on virtual machines a fresh page costs more than the arithmetic
    done on it (measured: a third fewer page faults, about 10 % less CPU on 50k series).
    Peak memory is unchanged: the same blocks are reused. Arrow's buffers (the file's batches)
    are then taken from the same C library: Arrow's own allocator hands freed pages back to the
    system as well (0.5 s of system time per 100k series, against 0.2-0.3 s from glibc's heap).
    Returns False where the C library is not glibc (nothing is changed then).
    """
    import ctypes
    import ctypes.util

    import pyarrow as pa

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    trim_threshold, mmap_threshold = -1, -3        # glibc's M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
    kept = bool(mallopt(mmap_threshold, int(largest))
                and mallopt(trim_threshold, int(largest) * 8))
    if kept:
        pa.set_memory_pool(pa.system_memory_pool())
    return kept


def one_blas_thread() -> None:
    """BLAS to one thread for this process. The forecaster's matrix products are small (a
    group's series × a few hundred periods) and idle BLAS threads spinning between them cost
    as much CPU as the work itself (the forecast command on 50k series: 9.6 s → 4.9 s of CPU,
    and the wall time with it); parallel work is done by processes or per org instead."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def located_panel(frame: pd.DataFrame, path: Path, columns: Columns, **grid) -> Panel:
    """:func:`restock.forecast.to_panel` of rows read from ``path``; a bad row's error names the
    file and line (CSV) or row (Parquet). ``grid``: freq, start, end."""
    from restock.forecast.panel import to_panel

    try:
        return to_panel(frame, id_col=columns.id, date_col=columns.date,
                        value_col=columns.quantity, **grid)
    except DataError as err:
        raise located(err, path, frame) from None


def _parquet_groups(path: Path, columns: Columns, max_series: int,
                    chunk_rows: int) -> Iterator[pd.DataFrame]:
    """groups() for Parquet, on Arrow batches: one conversion to pandas per group."""
    with closing(_open_parquet(path, columns.names)) as file:
        for batches, first_row in _arrow_batch_groups(_batches(file, columns, chunk_rows),
                                                        max_series):
            yield _to_frame(batches, first_row)


def _batches(file, columns: Columns, chunk_rows: int):
    return file.iter_batches(batch_size=chunk_rows, columns=columns.names)


def _arrow_batch_groups(batches, max_series: int, seen: set | None = None,
                          first_row: int = 1) -> Iterator[tuple[list, int]]:
    """Consecutive Arrow batches (from row ``first_row`` of the file on) as groups of whole
    series, ``max_series`` series a group (the last may hold fewer), with each group's first
    row number in the file. ``seen`` collects the ids of the series read."""
    # Groups are cut inside a batch, at the start of the series one past max_series: with whole
    # batches, a group's size followed how many series a batch happened to hold (a batch of
    # slow movers holds thousands), and processes taking every n-th group got unequal shares
    # (1M series on 2 processes: 45% and 55%).
    pending: list = []
    done = set() if seen is None else seen
    held, current, row = 0, None, first_row
    for batch in batches:
        batch_row, row = row, row + len(batch)
        starts, names = _runs(batch.column(0))
        continues = bool(names) and names[0] == current
        fresh = names[1:] if continues else names
        if len(set(fresh)) != len(fresh) or done.intersection(fresh):
            raise NotGrouped("the rows of a series are not together in the file")
        done.update(names[:-1])
        if current is not None and names and names[0] != current:
            done.add(current)
        current = names[-1] if names else current
        run, cut = int(continues), 0       # the batch's first run not yet in a group; its row
        while held + len(starts) - run > max_series:
            run += max_series - held
            pending.append(batch.slice(cut, int(starts[run]) - cut))
            yield pending, first_row
            cut = int(starts[run])
            pending, held, first_row = [], 0, batch_row + cut
        pending.append(batch.slice(cut))
        held += len(starts) - run
    if current is not None:
        done.add(current)
    if pending and sum(len(b) for b in pending):
        yield pending, first_row


def _runs(ids) -> tuple[np.ndarray, list[str]]:
    """Where each run of equal ids starts in a batch column, and the run's id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_dictionary(ids.type):
        ids = pc.dictionary_encode(ids)
    codes = ids.indices.fill_null(-1) if ids.null_count else ids.indices
    codes = codes.to_numpy(zero_copy_only=False)
    if not len(codes):
        return np.zeros(0, dtype=np.int64), []
    starts = np.concatenate([[0], np.flatnonzero(codes[1:] != codes[:-1]) + 1])
    first = codes[starts]
    names = ids.dictionary.take(pa.array(np.maximum(first, 0))).to_pylist()
    return starts, [str(n) if c >= 0 else "" for n, c in zip(names, first, strict=True)]


def _to_frame(batches: list, first_row: int) -> pd.DataFrame:
    import pyarrow as pa

    frame = pa.Table.from_batches(batches).to_pandas(date_as_object=False)
    frame.attrs["first_row"] = first_row      # the rows of a group are contiguous in the file
    return frame


def _complete(stream: _Stream, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows of the series that end inside this chunk; the last series waits for the next."""
    name = stream.columns.id
    frame[name] = _categorical(frame[name])
    if stream.held is not None and len(stream.held):
        ids = union_categoricals([stream.held[name].array, frame[name].array])
        frame = pd.concat([stream.held.drop(columns=name), frame.drop(columns=name)],
                          ignore_index=True)
        frame[name] = ids
    if not len(frame):
        return frame, 0
    codes = frame[name].cat.codes.to_numpy()
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    runs = np.asarray(frame[name].cat.categories.astype(str))[
        codes[np.concatenate([[0], change])]]
    if len(set(runs)) != len(runs) or stream.done.intersection(runs):
        raise NotGrouped("the rows of a series are not together in the file")
    cut = change[-1] if len(change) else 0
    stream.held = frame.iloc[cut:]
    stream.done.update(runs[:-1])
    return frame.iloc[:cut], len(runs) - 1


def _categorical(column: pd.Series) -> pd.Series:
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column
    return column.astype(str).astype("category")


def read_all(path: Path, columns: Columns, chunk_rows: int = 1_000_000) -> pd.DataFrame:
    """Every row of the file (chunked reading, one compact frame at the end)."""
    parts = list(chunks(path, columns, chunk_rows))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns.names)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else err.__class__.__name__
