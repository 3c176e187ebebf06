"""How long a case takes to start: `Session.start` on each demo case, as the app calls it once
the model and the embedding model are loaded (the app loads them in the background at launch).

Measured per case, in a fresh home with the demo pack installed:
- start: from the call to the attempt opened and the opening statement ready (the prompt prefix
  is then made ready in the background: from its saved state, or evaluated and saved);
- ready: from the call until that background work has finished too (what the trainee's reading
  of the opening hides).
Run twice over the cases: in the first pass nothing is saved yet (each case's sentence vectors are
computed and its prefix evaluated, and both saved), the second loads them (as every start after
the first play, or after `pack install --warm`). Launch-to-screen times are in bench_tui.py.

Usage: python benchmarks/bench_startup.py [--no-model] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEMO = ROOT / "casepacks" / "edgetutor-demo.etpack"


def run(no_model: bool) -> dict[str, Any]:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ["EDGETUTOR_UNQUALIFIED"] = "1"  # measured whether or not this device qualified it
    with tempfile.TemporaryDirectory(prefix="edgetutor-startup-") as home:
        os.environ["EDGETUTOR_HOME"] = home
        os.environ["EDGETUTOR_CACHE"] = str(Path(home) / "cache")
        from edgetutor.packs.install import PackStore, install_path
        from edgetutor.patient.embed import load_encoder
        from edgetutor.service import open_store
        from edgetutor.service.session import Session, load_model

        install_path(DEMO)
        cases = [e.id for e in PackStore().cases()]
        backend, choice = load_model(None, no_model)
        encoder = load_encoder()
        store = open_store()
        passes: list[dict[str, Any]] = []
        for label in ("nothing saved yet", "vectors and prefix saved"):
            starts, readies = [], []
            for case_id in cases:
                t0 = time.perf_counter()
                session = Session.start(case_id, backend=backend, model=choice, store=store, encoder=encoder)
                starts.append(time.perf_counter() - t0)
                session.encounter.wait_ready()
                readies.append(time.perf_counter() - t0)
            passes.append(
                {
                    "pass": label,
                    "cases": len(cases),
                    "start_median_s": round(statistics.median(starts), 3),
                    "start_max_s": round(max(starts), 3),
                    "ready_median_s": round(statistics.median(readies), 3),
                    "ready_max_s": round(max(readies), 3),
                }
            )
        store.close()
        return {"model": choice.name, "passes": passes}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-model", action="store_true", help="authored answers only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.no_model)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model: {result['model'] or 'none (authored answers)'}")
    for p in result["passes"]:
        print(
            f"{p['pass']:>22}: case start median {p['start_median_s']:.3f} s (max {p['start_max_s']:.3f}); "
            f"prefix ready median {p['ready_median_s']:.3f} s (max {p['ready_max_s']:.3f}), {p['cases']} cases"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
