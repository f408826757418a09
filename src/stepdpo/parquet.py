"""Parquet files of records: free-form mappings kept as they were written.

Arrow gives a struct column the union of every row's keys (nulls added where a row lacks one) and
cannot store an empty mapping, so a column holding free-form mappings (``meta``, ``evidence``, a
nested record) is stored as JSON text and named in the schema's metadata; reading decodes it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PARQUET_JSON_KEY = b"stepdpo.json_columns"


def _table(pa: Any, rows: list[dict]) -> Any:
    """Rows as an Arrow table. A column holding free-form mappings (``meta``, ``evidence``, a nested
    record) is stored as JSON text, named in the schema's metadata: Arrow would give every row
    the union of all rows' keys (nulls added) and cannot store an empty mapping. A key some rows
    lack reads back as null in those rows."""
    free = sorted(
        {
            k
            for row in rows
            for k, v in row.items()
            if isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v))
        }
    )
    if free:
        rows = [
            {k: json.dumps(v, ensure_ascii=False) if k in free and v is not None else v for k, v in r.items()}
            for r in rows
        ]
    keys = list(dict.fromkeys(k for r in rows for k in r))  # every row's keys (from_pylist reads the first row's)
    table = pa.table({k: [r.get(k) for r in rows] for k in keys})
    return table.replace_schema_metadata({PARQUET_JSON_KEY: json.dumps(free).encode()}) if free else table


def write_table(rows: list[dict], path: str | os.PathLike) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(_table(pa, rows), path)


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a Parquet file; an unreadable file raises ValueError."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(Path(path))
    except Exception as e:  # pyarrow raises several types for a broken file
        raise ValueError(f"not a readable Parquet file ({e})") from e
    json_columns = json.loads((table.schema.metadata or {}).get(PARQUET_JSON_KEY, b"[]"))
    rows = table.to_pylist()
    for row in rows:
        for col in json_columns:
            if isinstance(row.get(col), str):
                row[col] = json.loads(row[col])
    return rows
