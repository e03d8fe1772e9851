"""A stand-in for `pst-bench` in the protocol runner's tests: writes the record a run of these overrides
would write, with the dev values given as JSON, and no training.

    python tests/fake_pst_bench.py '[0.8, 0.82]' model=minilm-l6 task=sst2 ... paths.results_dir=...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from helpers import fake_record

if __name__ == "__main__":
    dev, final = json.loads(sys.argv[1])
    overrides = sys.argv[2:]
    folder = Path(next(o.split("=", 1)[1] for o in overrides if o.startswith("paths.results_dir=")))
    record = fake_record(
        overrides, dev=dev, final=final, predictions={"counts": {"0": 5, "1": 5}, "majority_share": 0.5}
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{record['run_id']}.json").write_text(json.dumps(record))
    print(f"wrote {record['run_id']}")
