"""The Tansu broker fixture, shared with the Kafka tests, for the Kafka source's conformance."""

from tests.kafka.conftest import kafka_broker, topic_name

__all__ = ["kafka_broker", "topic_name"]
