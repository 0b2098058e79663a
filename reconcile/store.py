"""The sweep's results store: an append-only Parquet dataset, one file per batch of finished jobs, queried with
DuckDB.

Layout: OUT/store/part-<driver>-<batch>.parquet, one row per record a job produced (records.COLUMNS, `value` both
as a number and as its exact text), each row carrying its job's key, the release it ran and where and how long it
ran. A file is written beside its final name and renamed into place, so a reader (another driver, a query, a
driver killed while writing) sees a whole batch or none of it.

A job's key is the result-cache key (reconcile.cache.result_key: the model spec with the content of its sources,
the tool, the release, the code between a tool's printout and the records). A job is done when a file holds its
key: a rerun, or a second driver on the same folder, runs only the jobs no file holds. The driver is the only
writer of a result (engines hand results to it; a retried task returns its result once), and it drops a key it or
another driver already wrote (checked again against new files before each batch), so no key is written twice by
one driver; if two drivers finish the same job at the same moment, the views below keep the rows of the file
whose name sorts first, so every query and the export see each job exactly once.

Views (`connect`): `records` (one row per record of each job, from one file), `jobs` (one row per job: model,
tool, release, status, seconds, host), `raw` (every row of every file, duplicates included, for checks).
"""
from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Iterable, Optional

from .errors import UserError
from .records import COLUMNS as RECORD_COLUMNS, MODEL_LEVEL, Record

STORE_DIR = "store"
PREFIX, SUFFIX = "part-", ".parquet"
# columns a job's row carries besides the record's own, in file order
JOB_COLUMNS = ("job_key", "seq", "release")
RUN_COLUMNS = ("engine", "host", "cpu_s", "wall_s")  # how the job ran: not part of the export (not deterministic)
EXPORT_COLUMNS = ["job_key", "release"] + RECORD_COLUMNS
BATCH_JOBS = 16  # a batch file every BATCH_JOBS results, or every BATCH_SECONDS, whichever comes first
BATCH_SECONDS = 10.0


def _arrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("the sweep store needs pyarrow and duckdb: pip install -c constraints.txt '.[cluster]'") \
            from None
    return pa, pq


def _duckdb():
    try:
        import duckdb
    except ImportError:
        raise UserError("the sweep store needs pyarrow and duckdb: pip install -c constraints.txt '.[cluster]'") \
            from None
    return duckdb


def schema():
    pa, _ = _arrow()
    text = pa.string()
    fields = [("job_key", text), ("seq", pa.int32()), ("release", text)]
    for name in RECORD_COLUMNS:
        fields.append((name, pa.float64() if name == "value" else pa.int64() if name == "batch" else text))
        if name == "value":
            fields.append(("value_text", text))  # exactly as records.csv prints it (an int stays an int)
    fields += [("engine", text), ("host", text), ("cpu_s", pa.float64()), ("wall_s", pa.float64())]
    return pa.schema(fields)


def value_text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    return repr(float(value))


def job_key(tool: str, release: str, spec) -> str:
    """The result-cache key of a (tool, release, model) job."""
    from .cache import result_key

    key = result_key(spec, tool, release)
    if key is None:
        raise UserError(f"model {spec.name!r} cannot be keyed (an in-memory module, or sources that cannot be "
                        "read): the sweep store needs a spec with readable sources")
    return key


class Store:
    def __init__(self, out_dir: "str | Path"):
        self.out = Path(out_dir)
        self.folder = self.out / STORE_DIR
        self._keys_by_file: dict[str, set[str]] = {}

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX) and p.is_file())

    def done_keys(self) -> set[str]:
        """Every job key a batch file holds (files read once per Store; new files are read when they appear)."""
        _, pq = _arrow()
        for path in self.files():
            if path.name not in self._keys_by_file:
                try:
                    table = pq.read_table(path, columns=["job_key"])
                    self._keys_by_file[path.name] = set(table.column("job_key").to_pylist())
                except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                    raise UserError(f"{path}: not a readable batch of the sweep store ({exc})") from None
        return set().union(*self._keys_by_file.values()) if self._keys_by_file else set()

    def writer(self, engine: str, batch_jobs: int = BATCH_JOBS, batch_seconds: float = BATCH_SECONDS) -> "Writer":
        return Writer(self, engine, batch_jobs, batch_seconds)


class Writer:
    """Buffers finished jobs and writes them a batch file at a time (`add`, `flush`; `close` flushes)."""

    def __init__(self, store: Store, engine: str, batch_jobs: int, batch_seconds: float):
        self.store, self.engine = store, engine
        self.batch_jobs, self.batch_seconds = max(1, batch_jobs), batch_seconds
        self.driver = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-{os.urandom(3).hex()}"
        self.batches = 0
        self.written: set[str] = set()  # keys this writer wrote
        self.dropped = 0  # results for keys already in the store (another driver finished them first)
        self._rows: list[dict] = []
        self._keys: list[str] = []
        self._since = time.monotonic()
        self.store.folder.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, records: Iterable[Record], release: str = "", host: str = "",
            cpu_s: Optional[float] = None, wall_s: Optional[float] = None) -> bool:
        """Buffer one finished job's records; False (nothing kept) when the key is already written."""
        if key in self.written or key in self._keys:
            self.dropped += 1
            return False
        records = list(records)
        if not records:  # every job leaves a row, so that it counts as done
            raise ValueError(f"job {key} has no records")
        for seq, rec in enumerate(records):
            row = {"job_key": key, "seq": seq, "release": release or rec.tool_version}
            for name in RECORD_COLUMNS:
                row[name] = getattr(rec, name)
            row["value"] = None if rec.value is None else float(rec.value)
            row["value_text"] = value_text(rec.value)
            row.update(engine=self.engine, host=host, cpu_s=cpu_s, wall_s=wall_s)
            self._rows.append(row)
        self._keys.append(key)
        if len(self._keys) >= self.batch_jobs or time.monotonic() - self._since >= self.batch_seconds:
            self.flush()
        return True

    def flush(self) -> None:
        self._since = time.monotonic()
        if not self._keys:
            return
        done = self.store.done_keys() - self.written  # what other drivers wrote meanwhile
        if done & set(self._keys):
            self.dropped += len(done & set(self._keys))
            self._rows = [r for r in self._rows if r["job_key"] not in done]
            self._keys = [k for k in self._keys if k not in done]
            if not self._keys:
                return
        pa, pq = _arrow()
        table = pa.Table.from_pylist(self._rows, schema=schema())
        name = f"{PREFIX}{self.driver}-{self.batches:06d}{SUFFIX}"
        tmp = self.store.folder / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.store.folder / name)
        self.store._keys_by_file[name] = set(self._keys)
        self.written.update(self._keys)
        self.batches += 1
        self._rows, self._keys = [], []

    def close(self) -> None:
        self.flush()


# ------------------------------------------------------------------------------------------------ querying
def connect(out_dir: "str | Path"):
    """A DuckDB connection (in memory) with the views `raw`, `records` and `jobs` over the store's files."""
    duckdb = _duckdb()
    store = Store(out_dir)
    con = duckdb.connect()
    files = store.files()
    if files:
        listing = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
        con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet([{listing}], filename = true)")
    else:  # an empty store: the same columns, no rows
        pa, _ = _arrow()
        empty = schema().empty_table().append_column("filename", pa.array([], pa.string()))
        con.register("_empty", empty)
        con.execute("CREATE VIEW raw AS SELECT * FROM _empty")
    con.execute("CREATE VIEW records AS SELECT * EXCLUDE (filename) FROM raw WHERE (job_key, filename) IN "
                "(SELECT job_key, min(filename) FROM raw GROUP BY job_key)")
    con.execute(f"""CREATE VIEW jobs AS SELECT job_key, any_value(model) AS model, any_value(tool) AS tool,
        any_value(release) AS release, any_value(tool_version) AS tool_version,
        CASE WHEN bool_and(status = 'ok' OR layer <> '{MODEL_LEVEL}') THEN 'ok'
             ELSE any_value(CASE WHEN layer = '{MODEL_LEVEL}' AND status <> 'ok' THEN status END) END AS status,
        any_value(CASE WHEN layer = '{MODEL_LEVEL}' AND status <> 'ok' THEN message END) AS message,
        count(*) AS rows, any_value(engine) AS engine, any_value(host) AS host, any_value(cpu_s) AS cpu_s,
        any_value(wall_s) AS wall_s FROM records GROUP BY job_key""")
    return con


def query(out_dir: "str | Path", sql: str):
    """A query over the views, as a pandas DataFrame; a UserError of one line for bad SQL."""
    duckdb = _duckdb()
    con = connect(out_dir)
    try:
        return con.execute(sql).df()
    except duckdb.Error as exc:
        raise UserError(f"query: {str(exc).strip().splitlines()[0]}") from None
    finally:
        con.close()


def export_csv(out_dir: "str | Path") -> str:
    """Every job's records, one row each, ordered by job key and the record's place in its job: the same sweep
    gives the same bytes on any engine, in any order of completion, however batched, resumed or retried."""
    con = connect(out_dir)
    try:
        columns = ", ".join("value_text" if c == "value" else c for c in EXPORT_COLUMNS)
        rows = con.execute(f"SELECT {columns} FROM records ORDER BY job_key, seq").fetchall()
    finally:
        con.close()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
