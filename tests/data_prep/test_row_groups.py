"""The merge's Parquet writer holds at most one row group of pending rows, however many parts it is given."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from atomforge.data_prep import finalize
from atomforge.data_prep.schema import MANIFEST_SCHEMA


def test_empty_parts_do_not_pile_up_and_rows_land_in_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(finalize, "ROW_GROUP_ROWS", 4)
    empty = MANIFEST_SCHEMA.empty_table()
    rows = [{f.name: None for f in MANIFEST_SCHEMA} for _ in range(3)]
    three = pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA)
    with finalize.RowGroups(tmp_path / "m.parquet") as w:
        for _ in range(1000):  # most parts quarantine nothing
            w.write(empty)
        assert w.pending == []
        for _ in range(3):
            w.write(three)
        assert w.rows < 4  # flushed once it reached a row group
    meta = pq.ParquetFile(tmp_path / "m.parquet").metadata
    assert meta.num_rows == 9
    assert meta.num_row_groups == 2  # 6 rows once the group filled, then the last 3 at close
