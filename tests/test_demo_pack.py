"""The demo pack: enough real cases, clean, signed, matching its sources, trusted as DEMO."""

from __future__ import annotations

import hashlib
from pathlib import Path

from click.testing import CliRunner

from edgetutor.cases.lint import lint_source
from edgetutor.cli import make_cli
from edgetutor.packs.build import source_files
from edgetutor.packs.reader import open_pack
from edgetutor.packs.trust import TrustStore

from .conftest import DEMO_SRC, ROOT

DEMO_PACK = ROOT / "casepacks" / "edgetutor-demo.etpack"
DEMO_LABEL = "[DEMO publisher: not vetted]"


def test_demo_sources_lint_without_errors_or_warnings() -> None:
    cases, problems = lint_source(DEMO_SRC)
    assert [str(p) for p in problems] == []
    assert len(cases) >= 12


def test_demo_cases_are_rich_and_varied() -> None:
    cases, _ = lint_source(DEMO_SRC)
    for case in cases:
        assert len(case.facts) >= 15, case.id
        assert max(s.year for s in case.sources) >= 2012, f"{case.id}: no recent guidance cited"
        assert any(not t.available for t in case.investigations), (
            f"{case.id}: no unavailable test to teach with"
        )
        assert case.rubric.critical_errors, case.id
        assert {i.domain.value for i in case.rubric.items} == {
            "history",
            "examination",
            "investigations",
            "diagnosis",
            "management",
            "communication",
        }, case.id
        assert case.diagnosis.primary.icd10, case.id
    sexes = {c.patient.sex.value for c in cases}
    assert sexes == {"female", "male"}
    ages = [c.patient.age_years for c in cases]
    assert min(ages) < 5 and max(ages) >= 50 and any(18 <= a < 50 for a in ages)
    assert len({c.id for c in cases}) == len(cases)


def test_shipped_pack_verifies_with_the_demo_key_and_matches_the_sources() -> None:
    pack = open_pack(DEMO_PACK, TrustStore())
    pack.read_all()
    assert pack.publisher.demo and pack.manifest.pack_id == "edgetutor-demo"
    shipped = {f.path: f.sha256 for f in pack.manifest.files}
    sources = {rel: hashlib.sha256(path.read_bytes()).hexdigest() for rel, path in source_files(DEMO_SRC)}
    assert shipped == sources, (
        "casepacks/edgetutor-demo.etpack is stale: rebuild it with "
        "edgetutor pack build casepacks/demo --key casepacks/demo-publisher.key --out casepacks/edgetutor-demo.etpack"
    )
    assert (ROOT / "casepacks" / "demo-publisher.pub").read_text() == (
        ROOT / "edgetutor" / "packs" / "demo_publisher.pub"
    ).read_text()


def test_demo_publisher_is_labelled_everywhere(home: Path) -> None:
    runner = CliRunner()
    assert DEMO_LABEL in runner.invoke(make_cli(), ["trust", "list"]).output
    assert DEMO_LABEL in runner.invoke(make_cli(), ["pack", "verify", str(DEMO_PACK)]).output
    installed = runner.invoke(make_cli(), ["pack", "install", str(ROOT / "casepacks")])
    assert installed.exit_code == 0, installed.output
    assert DEMO_LABEL in installed.output
    assert DEMO_LABEL in runner.invoke(make_cli(), ["pack", "list"]).output
    listing = runner.invoke(make_cli(), ["cases"]).output
    assert DEMO_LABEL in listing and "malaria-uncomplicated-adult" in listing
