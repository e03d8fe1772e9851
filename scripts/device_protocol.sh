#!/usr/bin/env bash
# One call on the lent GPU machine (the device tool), from the repository root there, with .device carried:
#   bash scripts/device_protocol.sh [seconds for the protocol, default 360]
# Built here first by `make device-bundle` (pst_bench/install/device.py) on a clean checkout. It installs
# the carried wheels, checks that the files are the bundle's commit (so records name it), runs the GPU
# smoke check (every method, bf16, a few steps) and then the protocol (conf/protocol/device.yaml) for the
# time given, and leaves under $OUT: smoke.txt, protocol.txt, records.tar.gz (results/device/, to unpack
# here with `tar -xzf records.tar.gz`, then commit) and protocol.md (where it stands).
set -uo pipefail
budget=${1:-360}
out=${OUT:-/tmp/pst-device-out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .device/wheels/*.whl || exit 1
export PYTHONPATH="$PWD:/tmp/site" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p /tmp/pst-device && tar -xzf .device/payload.tar.gz -C /tmp/pst-device || exit 1
export PST_DATA_DIR=/tmp/pst-device/data
PST_GIT_COMMIT=$(python3 -m pst_bench.install.device verify .device/tree.json) || exit 1
export PST_GIT_COMMIT
# the configs are the package pst_bench.conf once installed (pyproject's package-dir); from the files, a link
[ -e pst_bench/conf ] || ln -s ../conf pst_bench/conf
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/smoke.txt"
python3 -m pst_bench.perf.gpu_smoke 2>&1 | tee -a "$out/smoke.txt"
timeout --signal=INT "$budget" python3 -m pst_bench.protocol --spec device 2>&1 | tee "$out/protocol.txt"
python3 -m pst_bench.protocol --spec device --dry-run --write "$out/protocol.md" > /dev/null 2>&1
tar -czf "$out/records.tar.gz" --exclude='*.npz' results/device 2>/dev/null
ls -la "$out"
