"""Installing, listing and removing packs on a device.

Layout under `EDGETUTOR_HOME/packs/`:
- `registry.json`: the installed packs, the highest version ever accepted per pack id (so a
  removed pack cannot be replaced by an older one), and the newest `created` ever accepted.
- `<pack_id>/<version>-<digest>/`: `files/` (the verified pack files), `manifest.json`,
  `manifest.sig` (to re-verify later) and `cases.json` (an index, so listing skips the YAML).

Install is atomic: files are verified while they stream into `.staging-*`, the folder is renamed
into place, and only then does `registry.json` (replaced atomically) point at it. A crash or a
full disk at any step leaves the registry pointing at the previous version, which stays intact.
Leftovers of an interrupted install are removed by the next install.

Rollback rule (stricter than "lower than installed", after TUF): a version lower than the highest
ever accepted for that pack id is refused, even after `pack remove`. The same version is accepted
again only with the same content.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from .. import paths
from ..cases.loader import parse_case_text, parse_pack_meta
from ..cases.safeyaml import MAX_YAML_BYTES
from ..errors import CaseFormatError, CasePackError, EdgeTutorError
from ..fsutil import atomic_write_bytes, fsync_dir
from .manifest import MANIFEST, SIGNATURE
from .reader import OpenedPack, open_pack
from .trust import DEMO_PACK_IDS, TrustStore

REGISTRY = "registry.json"
# The pack's own files go under FILES, apart from the signed manifest and our index, so that no
# pack member can collide with them.
FILES = "files"
# Room kept free beyond the pack's own size, so an install never fills the disk to the brim.
DISK_MARGIN = 16 * 1024 * 1024


@dataclass
class InstallResult:
    pack_id: str
    version: int
    status: str  # "installed", "upgraded" or "unchanged"
    publisher: str
    cases: int
    warnings: list[str] = field(default_factory=list)


@dataclass
class InstalledPack:
    pack_id: str
    version: int
    title: str
    publisher_key_id: str
    publisher: str
    created: str
    expires: str | None
    digest: str
    dir: Path
    cases: int
    installed_at: str


@dataclass
class CaseEntry:
    pack_id: str
    pack_version: int
    pack_digest: str
    publisher: str
    id: str
    title: str
    specialty: str
    difficulty: str
    setting: str
    patient: str
    file: Path
    #: the patient's opening words (what the library search reads besides the title); "" in
    #: indexes written before it was recorded
    complaint: str = ""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


class PackStore:
    """The installed packs of one EDGETUTOR_HOME."""

    def __init__(self, root: Path | None = None, trust: TrustStore | None = None) -> None:
        self.root = root or paths.packs_dir()
        self.trust = trust or TrustStore()

    # -- registry -------------------------------------------------------------------------
    def _registry(self) -> dict[str, Any]:
        path = self.root / REGISTRY
        if not path.exists():
            return {"format": 1, "packs": {}, "highest": {}, "newest_created": None}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise CasePackError(f"pack registry {path} is unreadable: {err}") from err
        if not isinstance(data, dict) or data.get("format") != 1:
            raise CasePackError(f"pack registry {path} has an unknown format")
        return data

    def _write_registry(self, data: dict[str, Any]) -> None:
        atomic_write_bytes(self.root / REGISTRY, json.dumps(data, indent=1, sort_keys=True).encode())

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / ".lock"):
            yield

    def installed(self) -> list[InstalledPack]:
        data = self._registry()
        out = []
        for pid, e in sorted(data["packs"].items()):
            key = self.trust.vouching(e["publisher_key_id"], pid)
            publisher = key.label if key else f"{e['publisher']} [publisher key no longer trusted]"
            out.append(
                InstalledPack(
                    pid,
                    e["version"],
                    e["title"],
                    e["publisher_key_id"],
                    publisher,
                    e["created"],
                    e["expires"],
                    e["digest"],
                    self.root / e["dir"],
                    e["cases"],
                    e["installed_at"],
                )
            )
        return out

    def get(self, pack_id: str) -> InstalledPack | None:
        return next((p for p in self.installed() if p.pack_id == pack_id), None)

    def effective_now(self) -> dt.datetime:
        """The current time, never earlier than the newest pack ever accepted.

        Devices without a real-time clock boot in the past; a pack's `created` proves that time
        has reached at least that point, so expiry cannot be dodged by a reset clock.
        """
        newest = self._registry().get("newest_created")
        now = _now()
        if newest:
            now = max(now, dt.datetime.fromisoformat(newest))
        return now

    # -- install --------------------------------------------------------------------------
    def install(self, pack_path: Path) -> InstallResult:
        """Verify and install one pack file. Raises CasePackError/SignatureError; changes nothing then."""
        # Signature, members and every file's hash are checked before anything is created on
        # disk. Staging streams the files again and re-checks them, so a pack file changed in
        # between (a flaky USB stick) is still caught.
        pack = open_pack(pack_path, self.trust)
        pack.read_all()
        index = check_sources(pack)
        with self._locked():
            m = pack.manifest
            digest = m.content_digest()
            data = self._registry()
            current = data["packs"].get(m.pack_id)
            highest = data["highest"].get(m.pack_id)
            if current and current["publisher_key_id"] != m.publisher_key_id:
                raise pack.refuse(
                    f"pack {m.pack_id} is installed from another publisher key ({current['publisher_key_id']})"
                )
            if highest and m.version < highest["version"]:
                what = (
                    "installed" if current and current["version"] == highest["version"] else "accepted before"
                )
                raise pack.refuse(
                    f"version {m.version} of {m.pack_id} is older than version {highest['version']} "
                    f"{what} (rollback refused)"
                )
            if highest and m.version == highest["version"] and digest != highest["digest"]:
                raise pack.refuse(
                    f"version {m.version} of {m.pack_id} has different content from the version "
                    "already accepted (a re-signed pack must get a new version number)"
                )
            if current and current["version"] == m.version:
                return InstallResult(
                    m.pack_id, m.version, "unchanged", pack.publisher.label, current["cases"]
                )
            need = sum(f.size for f in m.files) + len(pack.manifest_bytes) + DISK_MARGIN
            free = _free_bytes(self.root)
            if need > free:
                raise pack.refuse(
                    f"not enough disk space: needs {need / 1e6:.1f} MB, {free / 1e6:.1f} MB free"
                )

            warnings = []
            now = self.effective_now()
            if m.expires and m.expires < now.date():
                warnings.append(
                    f"pack {m.pack_id} v{m.version} expired on {m.expires.isoformat()}; installed anyway "
                    "(ask the publisher for a newer pack)"
                )

            self._clean_leftovers()
            final_rel = f"{m.pack_id}/{m.version}-{digest[:12]}"
            staging = self.root / f".staging-{uuid.uuid4().hex}"
            try:
                self._stage(pack, staging, index)
                n_cases = len(index)
                final = self.root / final_rel
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():  # left by an install that died before the registry switch
                    shutil.rmtree(final)
                os.rename(staging, final)
                fsync_dir(final.parent)
                previous = data["packs"].get(m.pack_id)
                created = m.created.isoformat()
                data["packs"][m.pack_id] = {
                    "version": m.version,
                    "title": m.title,
                    "publisher": m.publisher,
                    "publisher_key_id": m.publisher_key_id,
                    "created": created,
                    "expires": m.expires.isoformat() if m.expires else None,
                    "digest": digest,
                    "dir": final_rel,
                    "cases": n_cases,
                    "installed_at": _now().isoformat(),
                }
                data["highest"][m.pack_id] = {"version": m.version, "digest": digest}
                newest = data.get("newest_created")
                if not newest or dt.datetime.fromisoformat(newest) < m.created:
                    data["newest_created"] = created
                self._write_registry(data)
            except OSError as err:
                shutil.rmtree(staging, ignore_errors=True)
                if err.errno == errno.ENOSPC:
                    raise pack.refuse(
                        "the disk filled up during install; the previous version is untouched"
                    ) from err
                raise pack.refuse(
                    f"install failed ({err.strerror or err}); the previous version is untouched"
                ) from err
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            if previous and previous["dir"] != final_rel:
                shutil.rmtree(self.root / previous["dir"], ignore_errors=True)
            status = "upgraded" if previous else "installed"
            return InstallResult(m.pack_id, m.version, status, pack.publisher.label, n_cases, warnings)

    def _stage(self, pack: OpenedPack, staging: Path, index: list[dict[str, str]]) -> None:
        """Write the verified files and the case index into `staging`."""
        staging.mkdir(parents=True)
        for entry in pack.manifest.files:
            target = staging / FILES / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("xb") as out:
                for chunk in pack.stream(entry):
                    _write_chunk(out, chunk)
                out.flush()
                os.fsync(out.fileno())
        (staging / MANIFEST).write_bytes(pack.manifest_bytes)
        (staging / SIGNATURE).write_bytes(pack.signature)
        (staging / "cases.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
        fsync_dir(staging)

    def _clean_leftovers(self) -> None:
        if not self.root.exists():
            return
        for stale in self.root.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        live = {e["dir"] for e in self._registry()["packs"].values()}
        for pack_dir in self.root.iterdir():
            if pack_dir.is_dir() and not pack_dir.name.startswith("."):
                for version_dir in pack_dir.iterdir():
                    if f"{pack_dir.name}/{version_dir.name}" not in live:
                        shutil.rmtree(version_dir, ignore_errors=True)

    # -- remove / list --------------------------------------------------------------------
    def remove(self, pack_id: str) -> InstalledPack:
        """Uninstall a pack. Raises CasePackError if it is not installed."""
        with self._locked():
            pack = self.get(pack_id)
            if pack is None:
                raise CasePackError(f"pack {pack_id!r} is not installed (see: edgetutor pack list)")
            data = self._registry()
            del data["packs"][pack_id]
            self._write_registry(data)
            shutil.rmtree(pack.dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                pack.dir.parent.rmdir()
            return pack

    def case(self, case_id: str) -> CaseEntry:
        """The installed case with this id. Raises CasePackError (with suggestions) if none."""
        cases = self.cases()
        # A case id in a demo pack (which anyone can sign) never shadows the same id in a real pack.
        for entry in sorted(cases, key=lambda e: e.pack_id in DEMO_PACK_IDS):
            if entry.id == case_id:
                return entry
        close = difflib.get_close_matches(case_id, [c.id for c in cases], n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else " (see: edgetutor cases)"
        raise CasePackError(f"no installed case {case_id!r}.{hint}")

    def cases(self, include_untrusted: bool = False) -> list[CaseEntry]:
        """Cases of installed packs whose publisher is still trusted."""
        out = []
        for pack in self.installed():
            if not include_untrusted and self.trust.vouching(pack.publisher_key_id, pack.pack_id) is None:
                continue
            try:
                index = json.loads((pack.dir / "cases.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise CasePackError(
                    f"installed pack {pack.pack_id} is damaged ({err}); reinstall it"
                ) from err
            for c in index:
                out.append(
                    CaseEntry(
                        pack.pack_id,
                        pack.version,
                        pack.digest,
                        pack.publisher,
                        c["id"],
                        c["title"],
                        c["specialty"],
                        c["difficulty"],
                        c["setting"],
                        c["patient"],
                        pack.dir / FILES / c["file"],
                        str(c.get("complaint", "")),
                    )
                )
        return out


def check_sources(pack: OpenedPack) -> list[dict[str, str]]:
    """Parse every case (and pack.yaml) of a verified pack; returns the case index that lets
    listings skip the YAML. `pack verify` and install both call this, so a pack that verifies
    installs.

    Raises CasePackError naming the file and line of the first malformed source.
    """
    index: list[dict[str, str]] = []
    seen: set[str] = set()
    for entry in pack.manifest.files:
        is_case = entry.path.startswith("cases/") and entry.path.endswith(".yaml")
        if not is_case and entry.path != "pack.yaml":
            continue
        if entry.size > MAX_YAML_BYTES:
            # Refused before it is read: a YAML file is never held in memory past this size.
            raise pack.refuse(
                f"{entry.path} is {entry.size:,} bytes, larger than the {MAX_YAML_BYTES // 1024} kB a case "
                "file or pack.yaml may be"
            )
        try:
            data = pack.read_bytes(entry.path)
            if not is_case:
                parse_pack_meta(data, entry.path)
                continue
            case = parse_case_text(data, entry.path)
        except CaseFormatError as err:
            raise pack.refuse(f"malformed {'case' if is_case else 'pack.yaml'}: {err}") from err
        if case.id in seen:
            raise pack.refuse(f"case id {case.id} appears twice")
        seen.add(case.id)
        p = case.patient
        index.append(
            {
                "id": case.id,
                "title": case.title,
                "specialty": case.specialty,
                "difficulty": case.difficulty.value,
                "setting": case.setting,
                "patient": f"{p.name}, {case.age_label} {p.sex.value}",
                "complaint": " ".join(str(p.opening_statement).split()),
                "file": entry.path,
            }
        )
    if not index:
        raise pack.refuse("the pack holds no cases (cases/*.yaml)")
    return index


def _write_chunk(out: Any, chunk: bytes) -> None:
    # One place where install bytes hit the disk (tests inject a full disk here).
    out.write(chunk)


def find_packs(path: Path, max_depth: int = 3) -> list[Path]:
    """Pack files at PATH: the file itself, or every *.etpack under a folder (a USB stick).

    Folders are walked at most `max_depth` levels down and symbolic links to folders are not
    followed, so a stick with a huge tree or a link loop is still read quickly.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise CasePackError(f"no such file or folder: {path}")
    found = []
    level = [path]
    for _ in range(max_depth):
        below = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue  # an unreadable folder holds no packs we can install
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        below.append(Path(entry.path))
                    elif entry.name.endswith(".etpack") and entry.is_file():
                        found.append(Path(entry.path))
                except OSError:
                    continue
        level = below
    if not found:
        raise CasePackError(f"no .etpack files found in {path}")
    return sorted(found)


def install_path(path: Path, store: PackStore | None = None) -> list[InstallResult | EdgeTutorError]:
    """Install every pack at PATH; one result or error per pack, in order.

    A bad pack never stops the others: any failure, even one not foreseen, is that pack's error.
    """
    store = store or PackStore()
    results: list[InstallResult | EdgeTutorError] = []
    for pack in find_packs(path):
        try:
            results.append(store.install(pack))
        except EdgeTutorError as err:
            results.append(err)
        except Exception as err:  # noqa: BLE001 - one pack's surprise must not cost the others
            results.append(unexpected(pack, err))
    return results


def unexpected(pack: Path, err: BaseException) -> CasePackError:
    """A one-line refusal for a failure no check foresaw (the traceback is not for trainees)."""
    return CasePackError(f"refused {pack.name}: could not be read ({type(err).__name__}: {str(err)[:200]})")
