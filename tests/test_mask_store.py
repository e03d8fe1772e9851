"""The mask distances kept in git (report.mask_store): a checkout without the mask files gets the same
distances, and a mask file that changed is measured again rather than read from the store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pst_bench.export import load_masks
from pst_bench.record import load_records
from pst_bench.report import masks
from pst_bench.report.mask_store import STORE_NAME, MaskDistanceStore
from pst_bench.report.tables import main, make_tables
from pst_bench.sparsity.bits import pack_bits

KEYS = (("map", 0.9), ("mvp", 0.9), ("pst", 0.9))


@pytest.fixture
def runs_dir(tiny_runs, tmp_path):
    return tiny_runs.folder(tmp_path / "runs", *KEYS)


def save_masks_file(loaded: dict, path) -> None:
    """A ``.masks.npz`` in the layout of ``export.artifacts.save_masks``, from boolean arrays."""
    arrays = {}
    for name, mask in loaded.items():
        arrays[name], arrays[f"{name}.shape"] = pack_bits(mask), np.asarray(mask.shape)
    np.savez_compressed(path, **arrays)


def _distances(out) -> pd.DataFrame:
    return pd.read_csv(out / "mask_distance.csv").sort_values(["pair", "first_run"]).reset_index(drop=True)


def test_make_tables_keeps_every_distance_and_reads_it_back_without_the_masks(runs_dir, tmp_path):
    make_tables(runs_dir, tmp_path / "with")
    with_masks = _distances(tmp_path / "with")
    assert len(with_masks) == 3
    store = MaskDistanceStore(runs_dir / STORE_NAME)
    assert len(store.rows) == 3
    stored = (runs_dir / STORE_NAME).read_bytes()

    for path in runs_dir.glob("*.masks.npz"):
        path.unlink()
    make_tables(runs_dir, tmp_path / "without")
    # the same files byte for byte: a clean clone rebuilds the committed tables
    assert (tmp_path / "without" / "mask_distance.csv").read_bytes() == (
        tmp_path / "with" / "mask_distance.csv"
    ).read_bytes()
    assert (tmp_path / "without" / "claims.md").read_bytes() == (tmp_path / "with" / "claims.md").read_bytes()
    assert (runs_dir / STORE_NAME).read_bytes() == stored  # reading never rewrites it
    assert "mask_distances.csv" in (tmp_path / "without" / "mask_distance.md").read_text()


def test_masks_in_the_sweep_clones_folder_fill_this_checkouts_store(runs_dir, tmp_path, capsys):
    elsewhere = tmp_path / "sweep-runs"
    elsewhere.mkdir()
    for path in runs_dir.glob("*.masks.npz"):
        path.rename(elsewhere / path.name)
    assert main(["--runs", str(runs_dir), "--out", str(tmp_path / "out"), "--masks", str(elsewhere)]) == 0
    found = _distances(tmp_path / "out")
    assert len(found) == 3
    assert len(MaskDistanceStore(runs_dir / STORE_NAME).rows) == 3
    assert main(["--runs", str(runs_dir), "--masks", str(tmp_path / "nowhere")]) == 2
    assert "no runs folder" in capsys.readouterr().err


def test_without_a_store_or_the_masks_there_is_no_distance(runs_dir):
    for path in runs_dir.glob("*.masks.npz"):
        path.unlink()
    with pytest.warns(Warning, match="masks unreadable"):
        assert masks.mask_pairs(load_records(runs_dir), store=MaskDistanceStore(runs_dir / STORE_NAME)) == []


def test_a_mask_file_that_changed_is_measured_again(runs_dir):
    store = MaskDistanceStore(runs_dir / STORE_NAME)
    before = {(p.first, p.second): p.result for p in masks.mask_pairs(load_records(runs_dir), store=store)}
    store.save()

    # flip every entry of the MvP run's first matrix: its file's hash no longer matches the stored one
    records = {r.method: r for r in load_records(runs_dir)}
    path = records["mvp"].artifact("masks")
    loaded = load_masks(path)
    first = next(iter(loaded))
    loaded[first] = ~loaded[first]
    save_masks_file(loaded, path)

    store = MaskDistanceStore(runs_dir / STORE_NAME)
    after = {(p.first, p.second): p for p in masks.mask_pairs(load_records(runs_dir), store=store)}
    assert after["MaP", "PST"].result == before["MaP", "PST"]  # untouched files: the same numbers
    expected = masks.mask_distance(load_masks(records["map"].artifact("masks")), load_masks(path))
    assert expected.distance != pytest.approx(before["MaP", "MvP"].distance)
    assert after["MaP", "MvP"].result == expected
    store.save()
    pair = after["MaP", "MvP"]
    assert MaskDistanceStore(runs_dir / STORE_NAME).get(pair.first_run, pair.second_run).distance == expected.distance


def test_an_unreadable_store_names_its_file_and_line(tmp_path):
    path = tmp_path / STORE_NAME
    path.write_text(
        "first_run,second_run,first_sha256,second_sha256,hamming_distance,kept_overlap,matrices\n"
        "a.json,b.json,00,11,0.1,0.9,4\n"
        "a.json,c.json,00,22,not-a-number,0.9,4\n"
    )
    with pytest.raises(ValueError, match=rf"{STORE_NAME}:3: unreadable row"):
        MaskDistanceStore(path)
    path.write_text("first,second\n")
    with pytest.raises(ValueError, match="columns"):
        MaskDistanceStore(path)
