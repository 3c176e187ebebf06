"""Install packs from a USB stick (or any folder or pack file), from the case library.

The same core call as `edgetutor pack install PATH`, so the same verification and the same
one-line refusals; each pack's result becomes a notification.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from ..errors import EdgeTutorError
from ..packs.install import InstallResult, install_path


def default_path() -> str:
    """Where a USB stick usually appears (first mount found), else empty."""
    for root in (Path("/media"), Path("/mnt"), Path("/run/media")):
        try:
            mounts = sorted(p for p in root.rglob("*") if p.is_dir() and p.parent != root.parent)[:1]
        except OSError:
            continue
        if mounts:
            return str(mounts[0])
    return ""


class InstallScreen(ModalScreen[int]):
    """Ask for a path, install every pack found there, dismiss with the number installed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="install-dialog"):
            yield Label("Install case packs from a USB stick, a folder or a .etpack file:")
            yield Input(value=default_path(), placeholder="/media/usb", id="install-path")
            yield Label(
                "Enter installs (every pack found is verified first); Esc cancels.", id="install-hint"
            )

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = event.value.strip()
        if not path:
            self.notify("Type the folder or file to install from.", severity="warning")
            return
        self.query_one("#install-hint", Label).update(f"Verifying packs in {path}...")
        self.install(Path(path).expanduser())

    @work(thread=True, exclusive=True, group="install")
    def install(self, path: Path) -> None:
        try:
            results = install_path(path)
        except EdgeTutorError as err:
            self.app.call_from_thread(
                self.app.notify, str(err), title="Not installed", severity="error", timeout=10
            )
            self.app.call_from_thread(
                self.query_one("#install-hint", Label).update, "Enter installs; Esc cancels."
            )
            return
        installed = 0
        for result in results:
            if isinstance(result, InstallResult):
                installed += result.status != "unchanged"
                verb = "Already installed" if result.status == "unchanged" else result.status.capitalize()
                message = f"{verb}: {result.pack_id} v{result.version}, {result.cases} case(s), from {result.publisher}"
                self.app.call_from_thread(self.app.notify, message, title="Pack", timeout=8)
                for warning in result.warnings:
                    self.app.call_from_thread(self.app.notify, warning, severity="warning", timeout=10)
            else:
                self.app.call_from_thread(
                    self.app.notify, str(result), title="Refused", severity="error", timeout=10
                )
        self.app.call_from_thread(self.dismiss, installed)

    def action_cancel(self) -> None:
        self.dismiss(0)
