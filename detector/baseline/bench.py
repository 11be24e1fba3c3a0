"""`trailguard baseline bench`: what training and scoring cost, on the bundled captures.

Figures, not assertions: how long collecting the history (the pipeline, baselines off) and
fitting each model take, how large the artifact is and how long it takes to load, and the
cost per event of the run-time (`observe` while learning, and scoring alone). Times are
CPU time of this process, so other work on the machine inflates them less than wall time.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TextIO

from detector.baseline.artifact import load_artifact, save_artifact
from detector.baseline.inputs import plan
from detector.baseline.train import CollectStats, collect, make_models
from detector.config import Settings
from detector.core.policy import SeverityPolicy

DATA = Path("tests/data/cloudtrail")


def _no_s3() -> None:
    raise RuntimeError("the bench reads local files only")


def run(out: TextIO, *, repeat: int = 5, data: Path = DATA) -> None:
    settings = Settings()
    stats = CollectStats()
    started = time.process_time()
    events = list(
        collect(plan([str(data)], s3_client=_no_s3), settings=settings, s3_client=_no_s3,
                stats=stats)
    )  # fmt: skip
    collected = time.process_time() - started
    out.write(f"history: {data} ({stats.events:,} events, {len(events):,} kept)\n")
    out.write(f"collect (pipeline, baselines off): {collected:.2f} s CPU\n")
    models = make_models(None, {}, source="<bench>")
    for model in models:
        started = time.process_time()
        model.fit(events)
        out.write(f"fit {model.name}: {time.process_time() - started:.2f} s CPU\n")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "artifact"
        save_artifact(directory, models, window=stats.window(), source_note=str(data))
        size = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        started = time.process_time()
        loaded = load_artifact(directory)
        out.write(f"artifact: {size:,} bytes; load {time.process_time() - started:.3f} s CPU\n")
    policy = SeverityPolicy()
    for name, model in loaded.models.items():
        runtime = model.runtime(policy, {})
        started = time.process_time()
        for _ in range(repeat):
            for event in events:
                runtime.observe(event.ctx, event.findings, learn=True)
            runtime.drain()
        observe = (time.process_time() - started) / (repeat * len(events))
        scorer = getattr(runtime, "score", None)
        line = f"{name}: observe {observe * 1e6:.1f} us/event (learning)"
        if scorer is not None:
            started = time.process_time()
            for _ in range(repeat):
                for event in events:
                    scorer(event.ctx)
            scored = (time.process_time() - started) / (repeat * len(events))
            line += f", score alone {scored * 1e6:.1f} us/event"
        out.write(line + f" over {repeat} x {len(events):,} events\n")
