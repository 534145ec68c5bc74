"""The release matrix, from recipes/targets.yaml: one job per toolchain, as the JSON GitHub
Actions' `strategy.matrix` takes (`fromJSON`), so a new target row is a new job without
editing the workflow."""
from __future__ import annotations

import json

from .sources.recipes import Recipes


def matrix(recipes: Recipes, host: str) -> dict:
    """{"include": [{"toolchain", "target", "triple", "stage0", "qemu_min"}, ...]} for every target built
    for `host` ("build": the build machine's programs; else a row of hosts:)."""
    jobs = []
    for name, (target, h) in recipes.builds().items():
        if (h.name if h else "build") != host:
            continue
        jobs.append({"toolchain": name, "target": target.name, "triple": target.triple,
                     "stage0": h.stage0.name if h else "", "qemu_min": target.qemu_min or ""})
    return {"include": jobs}


def as_json(recipes: Recipes, host: str) -> str:
    return json.dumps(matrix(recipes, host), separators=(",", ":"))
