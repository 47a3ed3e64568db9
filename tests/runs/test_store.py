"""The shard store's plan: chunks and the split over ranks cover every item once, for any number of ranks."""

from __future__ import annotations

from pathlib import Path

import pytest

from cameras.runs import RunConfigError, ShardStore, chunks, share


@pytest.mark.parametrize("n", [0, 1, 7, 64, 65])
@pytest.mark.parametrize("size", [1, 3, 32])
def test_chunks_and_shares_cover_every_item_exactly_once(n: int, size: int) -> None:
    parts = chunks(n, size)
    assert [i for c in parts for i in c] == list(range(n)) and all(1 <= len(c) <= size for c in parts)
    pending = [c for c in range(len(parts)) if c % 4 != 1]  # some already done
    for world in (1, 2, 3, 8):
        shares = [share(pending, r, world) for r in range(world)]
        merged = sorted(c for s in shares for c in s)
        assert merged == pending  # no chunk twice, none missing
        assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced


def test_store_ignores_torn_writes_and_refuses_another_key(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "shards")
    assert store.open({"model": "a", "steps": 3}, overwrite=False) == 0
    store.commit(0, {"rows": [{"v": float("nan")}]})
    (tmp_path / "shards" / ".chunk-000001.json.abcdef0123456789.tmp").write_text("{")
    assert store.done() == {0} and store.read(0)["rows"] == [{"v": None}]
    assert store.open({"model": "a", "steps": 3}, overwrite=False) == 1
    with pytest.raises(RunConfigError, match=r": steps differs \(3 → 4\); give another --out, or pass --overwrite"):
        store.open({"model": "a", "steps": 4}, overwrite=False)
    assert store.open({"model": "a", "steps": 4}, overwrite=True) == 0 and store.done() == set()
