"""The Tansu broker and the produce and read-back helpers the Kafka tests use.

They live in `detector.bench.tansu` because the benchmarks start the same broker; see that
module for how Tansu differs from Apache Kafka and how the helpers work around it.
"""

from detector.bench.tansu import (
    FAST_GROUP_CONFIG,
    HOST,
    BrokerError,
    TansuBroker,
    count_messages,
    free_port,
    produce,
    read_all,
    tansu_binary,
)

__all__ = [
    "FAST_GROUP_CONFIG",
    "HOST",
    "BrokerError",
    "TansuBroker",
    "count_messages",
    "free_port",
    "produce",
    "read_all",
    "tansu_binary",
]
