"""`trailguard bench ...`: the figures the README's performance table quotes.

Every figure is printed by a command, never asserted by a test: timing a busy machine fails
for the wrong reasons and timing an idle one proves nothing. Each command measures the
things it compares in the same run, so a ratio holds even when the machine's load does not.

* `trailguard bench` (`replay_rate`): replay against orjson decoding the same lines.
* `bench kafka` (`kafka_rate`): `trailguard run` against kafka-python consuming the topic.
* `bench memory` (`memory`): peak RSS and bytes per live session.
* `bench latency` (`latency`): decision latency of the service at a target rate.
* `bench peer` (`peer`): pypanther's CloudTrail rules against replay on the same events.
* `bench scale` (`scale`): two `run` instances against one over a keyed topic.
"""

from detector.bench.replay_rate import run

__all__ = ["run"]
