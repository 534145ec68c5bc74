"""The target's build report: each finished stage's wall time, versions and flags."""
from __future__ import annotations

import json

from ..sources.store import write_json
from .context import Build


def write_report(b: Build) -> dict:
    """From the stamps of the finished stages, in the order they ran."""
    stamps = []
    for path in sorted((b.work / "stamps").glob("*.json")):
        try:
            stamps.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    stamps.sort(key=lambda s: s.get("started", 0))
    report = {"target": b.target.name, "host": b.host.name if b.host else "build", "triple": b.triple,
              "prefix": str(b.prefix),
              "versions": {p: v.version for p, v in b.versions.items()},
              "stages": {s["stage"]: {"seconds": s["seconds"], "cpu_seconds": s.get("cpu_seconds"),
                                      "steps": s.get("steps", []), "config": s["config"]} for s in stamps},
              "total_seconds": round(sum(s["seconds"] for s in stamps), 1),
              "total_cpu_seconds": round(sum(s.get("cpu_seconds") or 0 for s in stamps), 1)}
    write_json(b.work / "report.json", report)
    return report
