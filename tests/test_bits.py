"""The one bit packing of masks on disk: round trip, bit order, and the committed run masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pst_bench.export import load_masks
from pst_bench.sparsity.bits import pack_bits, unpack_bits

RESULTS = Path(__file__).resolve().parents[1] / "results"
# the committed records whose mask files are committed too: one archived PST run of each CPU archive (1,000 and
# 2,000 examples) keeps its arrays in the tree (the others' are in git history: results/archive/cpu-2000/README.md)
COMMITTED_RECORDS = sorted(
    path
    for folder in ("runs", "archive/cpu-1000", "archive/cpu-2000")
    for path in (RESULTS / folder).glob("sst2_minilm-l6_pst_p90_s42_*.json")
    if path.with_suffix(".masks.npz").is_file()
)


def test_committed_mask_files_are_there_to_check():
    folders = {path.parent.name for path in COMMITTED_RECORDS}
    assert {"cpu-1000", "cpu-2000"} <= folders, f"committed mask files to check, found only in {sorted(folders)}"


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (3, 5), (64, 48), (2, 3, 7)])
def test_round_trip_from_a_tensor_and_from_an_array(shape):
    mask = torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.3
    bits = pack_bits(mask)
    assert bits.dtype == np.uint8 and bits.shape == ((mask.numel() + 7) // 8,)
    assert np.array_equal(unpack_bits(bits, shape), mask.numpy())
    assert np.array_equal(unpack_bits(torch.from_numpy(bits), shape), mask.numpy())  # as safetensors holds it
    assert np.array_equal(pack_bits(mask.numpy()), bits)


def test_first_entry_is_the_most_significant_bit():
    mask = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    assert pack_bits(mask).tolist() == [0b10000000, 0b01000000]


@pytest.mark.parametrize("record_path", COMMITTED_RECORDS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_committed_masks_still_load_identically(record_path):
    """Each mask's pruned fraction is the record's, and its entries at the sampled positions of the
    run's score file are that file's ``kept`` flags. The second check is the one a changed bit order
    fails (a permutation within each byte keeps the counts)."""
    record = json.loads(record_path.read_text())
    masks_path = record_path.parent / record["artifacts"]["masks"]
    if not masks_path.is_file():
        pytest.skip(f"{masks_path.name} not found")
    masks = load_masks(masks_path)
    per_matrix = record["sparsity_achieved"]["per_matrix"]
    assert set(masks) == set(per_matrix)
    for name, mask in masks.items():
        assert round(1.0 - float(mask.mean()), 6) == per_matrix[name], name
    _check_against_the_score_sample(record, masks, record_path.parent)


def _check_against_the_score_sample(record: dict, masks: dict, folder: Path) -> None:
    """Redraw the positions save_score_sample drew (its seeded randperm) and compare the kept flags."""
    sample = np.load(folder / record["artifacts"]["scores"])
    settings = record["config"]["artifacts"]
    generator = torch.Generator().manual_seed(int(record["config"]["train"]["seed"]))
    for name in list(masks)[: int(settings["score_sample_layers"])]:
        flat = masks[name].reshape(-1)
        index = torch.randperm(flat.size, generator=generator)[: int(settings["score_sample"])].numpy()
        assert np.array_equal(flat[index], sample[f"{name}.kept"]), name
