"""One-folder build of `edgetutor` and its release tarball (run it through build/build.sh).

    bash build/build.sh [--dist DIR] [--work DIR]

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
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "build" / "edgetutor.spec"
DEMO_PACK = ROOT / "casepacks" / "edgetutor-demo.etpack"

FOLDER_README = """\
EdgeTutor {version} ({arch}), one-folder build

  ./edgetutor                      open the terminal app
  ./edgetutor pack install casepacks/edgetutor-demo.etpack
  ./edgetutor --help               every command

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


def build(dist: Path, work: Path) -> dict[str, object]:
    """Run PyInstaller, lay out the folder, write the tarball and checksum. Returns the figures."""
    start = time.perf_counter()
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
    )
    pyinstaller_s = time.perf_counter() - start

    app = staging / "edgetutor"
    (app / "casepacks").mkdir(exist_ok=True)
    shutil.copy2(DEMO_PACK, app / "casepacks" / DEMO_PACK.name)
    (app / "models").mkdir(exist_ok=True)
    shutil.copy2(ROOT / "models" / "README.md", app / "models" / "README.md")
    arch = platform.machine()
    ver = version()
    (app / "README.txt").write_text(FOLDER_README.format(version=ver, arch=arch), encoding="utf-8")

    folder = dist / "edgetutor"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.move(str(app), folder)

    name = f"edgetutor-{ver}-linux-{arch}"
    tarball = dist / f"{name}.tar.gz"
    make_tarball(folder, tarball, name)
    checksum = dist / f"{tarball.name}.sha256"
    checksum.write_text(f"{sha256(tarball)}  {tarball.name}\n", encoding="utf-8")
    return {
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
        "--work",
        type=Path,
        default=ROOT / "build" / "cache",
        help="PyInstaller work folder (default: build/cache/)",
    )
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        raise SystemExit("build: only Linux builds are made here (see docs/build.md)")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    figures = build(args.dist.resolve(), args.work.resolve())
    print(
        f"Built {figures['folder']} ({figures['folder_mb']} MB) in {figures['total_s']} s "
        f"(PyInstaller {figures['pyinstaller_s']} s)\n"
        f"  {figures['tarball']} ({figures['tarball_mb']} MB)\n  {figures['sha256']}"
    )


if __name__ == "__main__":
    main()
