from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .postgres import PostgresServer

if TYPE_CHECKING:
    from .hub_helpers import Hub

# As the `edgetutor` command does: one BLAS thread, so numpy's idle threads do not spin on the
# cores llama.cpp needs (set before anything imports numpy).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
DEMO_SRC = ROOT / "casepacks" / "demo"
EXAMPLE_CASE = DEMO_SRC / "cases" / "malaria-uncomplicated-adult.yaml"


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rebuildable derived data (the taxonomy's embeddings), shared by the session's tests."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> Path:
    """Every test gets its own EDGETUTOR_HOME: no test touches a developer's own data."""
    home = tmp_path / "home"
    monkeypatch.setenv("EDGETUTOR_HOME", str(home))
    monkeypatch.setenv("EDGETUTOR_CACHE", str(shared_cache))
    monkeypatch.delenv("EDGETUTOR_DEBUG", raising=False)
    return home


@pytest.fixture
def publisher(tmp_path: Path) -> tuple[Path, Path]:
    """A fresh publisher key pair, trusted on the test device as 'Test Clinic'."""
    from edgetutor.packs.signing import generate
    from edgetutor.packs.trust import TrustStore

    private, public, _ = generate(tmp_path / "keys", "clinic")
    TrustStore().add(public, "Test Clinic")
    return private, public


def write_source(dest: Path, pack_id: str = "test-pack", version: int = 1, extra: str = "") -> Path:
    """A pack source folder holding the example case (and optional extra pack.yaml lines)."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "cases").mkdir(parents=True)
    (dest / "pack.yaml").write_text(
        f"id: {pack_id}\nversion: {version}\ntitle: Test pack\ndescription: For tests.\n"
        f"publisher: Test Clinic\n{extra}",
        encoding="utf-8",
    )
    shutil.copy(EXAMPLE_CASE, dest / "cases" / EXAMPLE_CASE.name)
    return dest


@pytest.fixture
def make_pack(tmp_path: Path, publisher: tuple[Path, Path]) -> Callable[..., Path]:
    """Build a signed pack with the test publisher key: make_pack(version=2, note='x')."""
    from edgetutor.packs.build import build_pack

    def make(version: int = 1, pack_id: str = "test-pack", note: str = "", extra: str = "", **kw) -> Path:
        src = write_source(tmp_path / f"src-{pack_id}-{version}", pack_id, version, extra)
        if note:  # a different but valid content for the same version
            (src / "NOTE.txt").write_text(note, encoding="utf-8")
        out = tmp_path / "out" / f"{pack_id}-{version}{'-' + str(abs(hash(note))) if note else ''}.etpack"
        build_pack(src, publisher[0], out, **kw)
        return out

    return make


def tree_state(root: Path) -> dict[str, str]:
    """Every file under root with its SHA-256: compare before/after to prove nothing changed."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    } | {str(p.relative_to(root)) + "/": "dir" for p in root.rglob("*") if p.is_dir()}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only the embedded model and this test's folders are found: the working directory is a
    temp dir, the checkout's models/ is hidden and EDGETUTOR_MODEL is unset."""
    from edgetutor.patient import models

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(models, "repo_models_dir", lambda: None)
    monkeypatch.delenv("EDGETUTOR_MODEL", raising=False)
    return work


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session (tests/postgres.py); each test that needs a
    clean hub takes a fresh database from it."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


# The engines every hub test that is parametrised by `engine` runs on.
ENGINES = ("sqlite", "postgresql")


def hub_database(engine: str, folder: Path, server: PostgresServer) -> Path | str:
    """A fresh, empty hub database on `engine`: a file in `folder`, or a new PostgreSQL database."""
    return folder / "hub.db" if engine == "sqlite" else server.new_database()


@pytest.fixture
def sqlite_hub(tmp_path: Path) -> Iterator[Hub]:
    """A running hub (tests/hub_helpers.Hub) on a fresh SQLite file, `tmp_path/hub/hub.db`, with
    the coordinator's own EDGETUTOR_HOME beside it (not the test device's); stopped afterwards.
    Tests that need other arguments (workers, a PostgreSQL URL, limits) build a `Hub` themselves."""
    from .hub_helpers import running_hub

    folder = tmp_path / "hub"
    folder.mkdir()
    with running_hub(folder / "hub.db", extra_env={"EDGETUTOR_HOME": str(folder / "home")}) as hub:
        yield hub
