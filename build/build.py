"""One-folder build of `edgetutor` and its release tarball (run it through build/build.sh).

    bash build/build.sh [--dist DIR] [--work DIR] [--llama-lib DIR]

Writes, under DIR (default: dist/ in the checkout):
- edgetutor/: the one-folder build. `edgetutor/edgetutor` is the command; `_internal/` holds
  Python, the libraries, llama.cpp's shared libraries, the embedded SmolLM2 model and the
  all-MiniLM-L6-v2 embedding model, all as plain files (llama.cpp memory-maps the model straight
  from disk; a one-folder build extracts nothing at start-up); `casepacks/` holds the signed demo
  pack; `models/` is where bigger GGUF models go (found when edgetutor runs from this folder);
- edgetutor-<version>-linux-<arch>.tar.gz: that folder, named edgetutor-<version>-linux-<arch>/;
- edgetutor-<version>-linux-<arch>.tar.gz.sha256: its SHA-256, in `sha256sum -c` format.

PyInstaller's work files go to build/cache/ (git-ignored) unless --work says otherwise. Nothing is
downloaded: everything comes from the virtualenv that runs this script (set up by scripts/setup).

llama.cpp runs only on CPUs with the instructions it was compiled for. scripts/setup compiles it
for the build machine itself (GGML_NATIVE=ON), so the build records those features in README.txt
and warns when they go beyond what the target machines are sure to have (AVX-512 on x86, dotprod
or fp16 arithmetic on ARM). `--llama-lib DIR` takes the libraries from a portable build instead
(see docs/build.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "build" / "edgetutor.spec"
DEMO_PACK = ROOT / "casepacks" / "edgetutor-demo.etpack"

FOLDER_README = """\
EdgeTutor {version} ({arch}), one-folder build

  ./edgetutor                      open the terminal app
  ./edgetutor pack install casepacks/edgetutor-demo.etpack
  ./edgetutor --help               every command

llama.cpp in this build was compiled for these CPU features: {features}.
It stops with "Illegal instruction" on a CPU that lacks one of them.

No Python or virtualenv is needed. Data (trust store, packs, scores) lives in $EDGETUTOR_HOME,
by default ~/.local/share/edgetutor. The default model (SmolLM2-135M-Instruct) is built in.
Bigger GGUF models: put them in models/ here and run edgetutor from this folder, or put them in
$EDGETUTOR_HOME/models, or name one with --model / EDGETUTOR_MODEL. `./edgetutor bench` says
whether a model is fast enough on this machine.
"""


def version() -> str:
    """edgetutor's version, read from the source (the build runs from the checkout)."""
    for line in (ROOT / "edgetutor" / "__init__.py").read_text(encoding="utf-8").splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise SystemExit("build: no __version__ in edgetutor/__init__.py")


# Features a portable build must not assume: x86 PCs without AVX-512 are the norm, and a
# Raspberry Pi 4 (Cortex-A72, ARMv8.0) has neither dotprod nor fp16 vector arithmetic.
NOT_PORTABLE = {
    "x86_64": ("AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16", "AMX_INT8", "AVX_VNNI"),
    "aarch64": ("DOTPROD", "FP16_VA", "MATMUL_INT8", "SVE", "SME"),
}


def llama_features(lib_dir: Path) -> list[str]:
    """The CPU features llama.cpp in `lib_dir` was compiled for, from llama_print_system_info().

    Read in a child process: loading the library is a side effect this script should not keep.
    """
    code = (
        "import ctypes, json, sys; lib = ctypes.CDLL(sys.argv[1]); "
        "lib.llama_print_system_info.restype = ctypes.c_char_p; "
        "print(json.dumps(lib.llama_print_system_info().decode()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(lib_dir / "libllama.so")], capture_output=True, text=True, check=True
    )
    info: str = json.loads(out.stdout)
    features = []
    for part in info.replace("|", "\n").splitlines():
        key, _, value = part.partition("=")
        key = key.split(":")[-1].strip()
        if value.strip() == "1" and key:
            features.append(key)
    return features


def default_llama_lib() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build: llama-cpp-python is not installed (run bash scripts/setup)")
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


def folder_size(path: Path) -> int:
    """Bytes of the regular files under `path` (symbolic links not followed)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Nobody's uid or user name belongs in a release archive.
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_tarball(folder: Path, dest: Path, top: str) -> None:
    """`folder` as `dest` (gzip), entries sorted, under the top-level name `top`."""
    tmp = dest.with_name(dest.name + ".part")
    with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        tar.add(folder, arcname=top, filter=_normalise, recursive=False)
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=f"{top}/{path.relative_to(folder)}", filter=_normalise, recursive=False)
    tmp.replace(dest)


def build(dist: Path, work: Path, llama_lib: Path | None = None) -> dict[str, Any]:
    """Run PyInstaller, lay out the folder, write the tarball and checksum. Returns the figures."""
    start = time.perf_counter()
    lib_dir = llama_lib or default_llama_lib()
    if not (lib_dir / "libllama.so").is_file():
        raise SystemExit(f"build: no libllama.so in {lib_dir}")
    features = llama_features(lib_dir)
    dist.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    staging = work / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "PyInstaller",
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(staging),
            "--workpath",
            str(work / "pyinstaller"),
            str(SPEC),
        ],
        check=True,
        cwd=ROOT,
        env={**os.environ, "EDGETUTOR_LLAMA_LIB": str(lib_dir)},
    )
    pyinstaller_s = time.perf_counter() - start

    app = staging / "edgetutor"
    (app / "casepacks").mkdir(exist_ok=True)
    shutil.copy2(DEMO_PACK, app / "casepacks" / DEMO_PACK.name)
    (app / "models").mkdir(exist_ok=True)
    shutil.copy2(ROOT / "models" / "README.md", app / "models" / "README.md")
    arch = platform.machine()
    ver = version()
    (app / "README.txt").write_text(
        FOLDER_README.format(version=ver, arch=arch, features=" ".join(features) or "none reported"),
        encoding="utf-8",
    )

    folder = dist / "edgetutor"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.move(str(app), folder)

    name = f"edgetutor-{ver}-linux-{arch}"
    tarball = dist / f"{name}.tar.gz"
    make_tarball(folder, tarball, name)
    checksum = dist / f"{tarball.name}.sha256"
    checksum.write_text(f"{sha256(tarball)}  {tarball.name}\n", encoding="utf-8")
    risky = [f for f in features if f in NOT_PORTABLE.get(arch, ())]
    return {
        "features": features,
        "not_portable": risky,
        "folder": str(folder),
        "tarball": str(tarball),
        "sha256": str(checksum),
        "pyinstaller_s": round(pyinstaller_s, 1),
        "total_s": round(time.perf_counter() - start, 1),
        "folder_mb": round(folder_size(folder) / 1e6, 1),
        "tarball_mb": round(tarball.stat().st_size / 1e6, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One-folder build of edgetutor and its tarball")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument(
        "--llama-lib",
        type=Path,
        default=None,
        help="folder with libllama.so etc. from a portable llama.cpp build (default: the virtualenv's)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "cache",
        help="PyInstaller work folder (default: build/cache/)",
    )
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        raise SystemExit("build: only Linux builds are made here (see docs/build.md)")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    figures = build(
        args.dist.resolve(), args.work.resolve(), args.llama_lib.resolve() if args.llama_lib else None
    )
    print(
        f"Built {figures['folder']} ({figures['folder_mb']} MB) in {figures['total_s']} s "
        f"(PyInstaller {figures['pyinstaller_s']} s)\n"
        f"  {figures['tarball']} ({figures['tarball_mb']} MB)\n  {figures['sha256']}\n"
        f"  llama.cpp CPU features: {' '.join(figures['features'])}"
    )
    if figures["not_portable"]:
        print(
            f"WARNING: llama.cpp in this build needs {', '.join(figures['not_portable'])}: "
            "it will stop with 'Illegal instruction' on CPUs without them. For a tarball meant for "
            "other machines, build with --llama-lib from a portable llama.cpp (docs/build.md).",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
