"""Pack verification speed on a large pack.

Builds a pack of N cases (copies of the example case, default 1,000), then times, in the same run:
- `verify`: EdgeTutor's verification (signature, member checks, every file inflated with its
  size capped and its SHA-256 checked), as `edgetutor pack verify` does it;
- `baseline`: the least any verifier must do: stdlib zipfile reading every member and hashing
  it, with no signature or checks; the ratio verify/baseline is EdgeTutor's overhead;
- `install`: a full install (verify, parse every case, write, fsync) into a fresh home.

Usage: python benchmarks/bench_packs.py [--cases N] [--repeat R] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "casepacks" / "demo" / "cases" / "malaria-uncomplicated-adult.yaml"


def make_source(dest: Path, n: int) -> None:
    (dest / "cases").mkdir(parents=True)
    (dest / "pack.yaml").write_text(
        "id: bench-pack\nversion: 1\ntitle: Benchmark pack\ndescription: Generated.\npublisher: Bench\n"
    )
    text = EXAMPLE.read_text(encoding="utf-8")
    for i in range(n):
        case_id = f"bench-case-{i:05d}"
        body = re.sub(r"^id: .*$", f"id: {case_id}", text, count=1, flags=re.M)
        (dest / "cases" / f"{case_id}.yaml").write_text(body, encoding="utf-8")


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> dict[str, float | int]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["EDGETUTOR_HOME"] = str(tmp / "home")
        from edgetutor.packs.build import write_pack
        from edgetutor.packs.install import PackStore
        from edgetutor.packs.reader import open_pack
        from edgetutor.packs.signing import generate
        from edgetutor.packs.trust import TrustStore

        private, public, _ = generate(tmp / "keys", "bench")
        TrustStore().add(public, "Bench")
        make_source(tmp / "src", args.cases)
        pack = tmp / "bench.etpack"
        start = time.perf_counter()
        write_pack(tmp / "src", private, pack)
        build_s = time.perf_counter() - start

        trust = TrustStore()

        def verify() -> None:
            open_pack(pack, trust).read_all()

        def baseline() -> None:
            with zipfile.ZipFile(pack) as zf:
                for info in zf.infolist():
                    hashlib.sha256(zf.read(info)).digest()

        verify()  # warm the page cache for both
        verify_s = timed(verify, args.repeat)
        baseline_s = timed(baseline, args.repeat)
        start = time.perf_counter()
        PackStore().install(pack)
        install_s = time.perf_counter() - start

        result: dict[str, float | int] = {
            "cases": args.cases,
            "pack_bytes": pack.stat().st_size,
            "build_s": round(build_s, 4),
            "verify_s": round(verify_s, 4),
            "baseline_s": round(baseline_s, 4),
            "verify_over_baseline": round(verify_s / baseline_s, 2),
            "install_s": round(install_s, 3),
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"pack of {result['cases']} cases, {result['pack_bytes'] / 1e6:.1f} MB (built in {build_s:.2f} s)"
        )
        print(
            f"verify (signature + every file's size and SHA-256): {verify_s * 1000:.0f} ms (median of {args.repeat})"
        )
        print(f"baseline (stdlib zipfile read + SHA-256, no checks): {baseline_s * 1000:.0f} ms")
        print(f"verify / baseline: {verify_s / baseline_s:.2f}x")
        print(f"install (verify + parse every case + write + fsync): {install_s:.2f} s")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
