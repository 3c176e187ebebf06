"""Write edgetutor/cases/history_topics.npy: the standard history topics' sentence embeddings,
shipped with the package so that no start ever computes them. Run it after editing
edgetutor/cases/history_topics.yaml (a test says when the shipped file no longer matches).

Usage: python scripts/embed_topics.py
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from edgetutor.cases import taxonomy as tax_module  # noqa: E402
from edgetutor.patient.embed import Encoder  # noqa: E402
from edgetutor.patient.topics import SHIPPED, write_shipped  # noqa: E402

if __name__ == "__main__":
    out = write_shipped(tax_module.taxonomy(), Encoder.load(), Path(tax_module.__file__).with_name(SHIPPED))
    print(f"wrote {out} ({out.stat().st_size // 1024} kB)")
