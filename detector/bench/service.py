"""`trailguard run` as the benchmarks drive it: a child process with a Kafka source, a JSONL
file sink and SQLite state (or PostgreSQL), watched through its own /metrics endpoint.

The figures come from the service's counters, read by scraping, so what is measured is the
real command with its real commit order; the only settings that differ from the defaults
are the consumer group timings under which Tansu answers a join in seconds.
"""

from __future__ import annotations

import importlib.resources
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

import orjson
import yaml

from detector.bench.tansu import FAST_GROUP_CONFIG, HOST, free_port
from detector.bench.workloads import DEMO

# How often the benchmarks read a service's counters. Rendering /metrics costs the service
# about 10 to 25 ms on the development machine, so once a second keeps that near 1 to 2% of
# its time, and the end of a run is seen within a second.
SCRAPE_SECONDS: Final = 1.0
STOP_SECONDS: Final = 120.0
# Events per second below which a service is taken as stuck rather than slow.
SLOWEST: Final = 100.0
EVENTS: Final = "trailguard_events_total"
# What the Kafka source logs once the group gave it partitions (detector/sources/kafka.py).
ASSIGNED: Final = b'"message":"partitions assigned: '


class BenchError(RuntimeError):
    """A benchmark could not measure: a child failed, or the counts never added up."""


def demo_scopes() -> Path:
    """The incident's scope file, as a path (the package is installed from a wheel or not)."""
    with importlib.resources.as_file(
        importlib.resources.files("detector").joinpath(*DEMO, "scopes.yaml")
    ) as path:
        return Path(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaInput:
    bootstrap: str
    topic: str
    group_id: str
    shard_by: str = "none"

    def source(self) -> dict[str, Any]:
        """The `sources:` entry; the consume-only reader builds its client from the same."""
        return {
            "type": "kafka",
            "name": "trail",
            "bootstrap_servers": [self.bootstrap],
            "topics": [self.topic],
            "group_id": self.group_id,
            "shard_by": self.shard_by,
            **FAST_GROUP_CONFIG,
        }


def service_config(
    folder: Path, name: str, kafka: KafkaInput, *, port: int, state: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "scopes": str(demo_scopes()),
        "sources": [kafka.source()],
        "sinks": [{"type": "jsonl", "path": str(folder / f"{name}.jsonl")}],
        "state": dict(state),
        "service": {"instance": name},
        "http": {"host": HOST, "port": port},
        "log": {"format": "json"},
    }


def sqlite_state(path: Path) -> dict[str, Any]:
    return {"store": "sqlite", "path": str(path)}


class ServiceProcess:
    """One `trailguard run` child with its own config, output, log and metrics port."""

    def __init__(
        self, folder: Path, name: str, kafka: KafkaInput, *, state: Mapping[str, Any]
    ) -> None:
        self.name = name
        self.port = free_port()
        self.output = folder / f"{name}.jsonl"
        self.log = folder / f"{name}.log"
        self.config = folder / f"{name}.yaml"
        document = service_config(folder, name, kafka, port=self.port, state=state)
        self.config.write_text(yaml.safe_dump(document), encoding="utf-8")
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "detector", "run", "--config", str(self.config)]
        self._log = self.log.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log
        )

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def samples(self) -> dict[str, list[tuple[dict[str, str], float]]] | None:
        """Every sample of /metrics by name, or None while the endpoint does not answer."""
        url = f"http://{HOST}:{self.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body: bytes = response.read()
        except (urllib.error.URLError, OSError):
            return None
        return parse_exposition(body.decode())

    def total(self, name: str) -> float:
        """The sum of a metric's samples (0 when the endpoint is not up yet)."""
        samples = self.samples()
        return sum(value for _, value in (samples or {}).get(name, []))

    def stop(self) -> int:
        """SIGTERM and wait; the exit status (0 after a clean stop)."""
        process = self._process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return status

    def assigned_at(self) -> float | None:
        """When the Kafka source first logged partitions assigned to it (epoch seconds)."""
        if not self.log.exists():
            return None
        with self.log.open("rb") as log:
            for line in log:
                if ASSIGNED not in line:
                    continue
                entry = orjson.loads(line)
                if str(entry.get("message", "")).endswith("[]"):
                    continue  # a rebalance that left this member nothing
                return datetime.fromisoformat(entry["time"]).timestamp()
        return None

    def tail(self, characters: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""


def count_types(path: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not path.exists():
        return counts
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                kind = str(orjson.loads(line).get("type"))
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def parse_exposition(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text format → {name: [(labels, value), ...]}; enough for our own metrics."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, rest = head.partition("{")
        labels: dict[str, str] = {}
        for pair in rest.rstrip("}").split('",') if rest else []:
            key, _, raw = pair.partition("=")
            labels[key.strip()] = raw.strip().strip('"')
        samples.setdefault(name, []).append((labels, float(value)))
    return samples


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a group of services got, and when (wall-clock seconds): from the first
    partition assignment any of them logged to the scrape that saw the target reached.

    Timing from the assignment leaves out start-up and the consumer group's join, which
    say nothing about throughput, and keeps the first fetch in, as the consume-only
    reader's timing does."""

    started: float
    finished: float
    count: float
    per_instance: tuple[float, ...]

    @property
    def rate(self) -> float:
        elapsed = self.finished - self.started
        return self.count / elapsed if elapsed > 0 else 0.0


def wait_for_count(
    services: Sequence[ServiceProcess],
    target: int,
    *,
    timeout: float,
    metric: str = EVENTS,
) -> Progress:
    """Scrape until the services' `metric` sums to at least `target`, giving up after
    `timeout` or, for a large target, once the rate has been below SLOWEST on average."""
    deadline = time.monotonic() + max(timeout, target / SLOWEST)
    while True:
        now = time.time()
        counts = tuple(service.total(metric) for service in services)
        total = sum(counts)
        if total >= target:
            assigned = [at for s in services if (at := s.assigned_at()) is not None]
            if not assigned:
                raise BenchError(f"no service logged a partition assignment:\n{services[0].tail()}")
            return Progress(min(assigned), now, total, counts)
        for service in services:
            if not service.alive:
                raise BenchError(f"{service.name} exited early:\n{service.tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name}\n{s.tail()}" for s in services)
            raise BenchError(
                f"the services counted {total:.0f} of {target} events in {timeout:.0f} s\n{logs}"
            )
        time.sleep(SCRAPE_SECONDS)


def stop_all(services: Iterable[ServiceProcess]) -> None:
    """Stop every service; a non-zero exit is an error, quoting that service's log."""
    failed = [(s, status) for s in services if (status := s.stop()) != 0]
    if failed:
        lines = "\n".join(f"--- {s.name} exited {status}\n{s.tail()}" for s, status in failed)
        raise BenchError(f"a service did not stop cleanly:\n{lines}")
