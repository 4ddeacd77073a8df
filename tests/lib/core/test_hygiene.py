"""Start-up housekeeping removes what killed processes left, and nothing a live run uses."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lib.core.hygiene import STALE_SECONDS, remove_stale_leftovers

DAY_AND_A_BIT = STALE_SECONDS + 60


def age(path: Path, seconds: float) -> Path:
    """Set `path`'s (and, for a folder, its files') modification time `seconds` ago."""
    when = time.time() - seconds
    for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(item, (when, when))
    return path


def test_old_temporaries_go_and_finished_files_stay(tmp_path: Path) -> None:
    data = tmp_path / "data" / "energy" / "abc"
    data.mkdir(parents=True)
    (data / "energy.parquet").touch()
    finished = age(data / "energy.parquet", DAY_AND_A_BIT)
    old_tmp = data / ".energy.k2j3.tmp.parquet"
    old_tmp.touch()
    age(old_tmp, DAY_AND_A_BIT)
    fresh_tmp = data / ".energy.zz9.tmp.parquet"
    fresh_tmp.touch()
    partial = tmp_path / "raw" / ".partial" / "abc-ENB2012_data.xlsx.k3.part"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half")
    age(partial, DAY_AND_A_BIT)

    removed = remove_stale_leftovers(tmp_path)

    assert sorted(removed) == sorted([old_tmp, partial])
    assert finished.exists() and fresh_tmp.exists()


def test_a_checkpoint_folder_goes_only_when_nothing_in_it_changed_for_a_day(
    tmp_path: Path,
) -> None:
    abandoned = tmp_path / "models" / "energy" / "k1.backup"
    (abandoned / "latest").mkdir(parents=True)
    (abandoned / "latest" / "weights.h5").write_bytes(b"w")
    age(abandoned, DAY_AND_A_BIT)
    in_use = tmp_path / "models" / "energy" / "k2.backup"
    in_use.mkdir(parents=True)
    (in_use / "old.json").write_text("{}")
    age(in_use, DAY_AND_A_BIT)
    (in_use / "latest.weights.h5").write_bytes(b"just written")

    assert remove_stale_leftovers(tmp_path) == [abandoned]
    assert in_use.exists()


def test_a_home_that_does_not_exist_yet_is_fine(tmp_path: Path) -> None:
    assert remove_stale_leftovers(tmp_path / "nowhere") == []
