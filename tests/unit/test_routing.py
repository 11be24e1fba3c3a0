"""Routing keys: every credential set of one chain routes with the chain's root."""

from __future__ import annotations

import orjson

from detector.core.parse import parse_record
from detector.core.routing import RoutingTable, own_key
from tests.conftest import make_event
from tests.scenario import incident


def _assume(event_id: str, caller_key: str, minted_key: str) -> dict[str, object]:
    return make_event(
        eventID=event_id,
        eventSource="sts.amazonaws.com",
        eventName="AssumeRole",
        userIdentity={
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::111122223333:user/dana",
            "accountId": "111122223333",
            "accessKeyId": caller_key,
        },
        requestParameters={"roleArn": "arn:aws:iam::111122223333:role/R", "roleSessionName": "s"},
        responseElements={
            "credentials": {"accessKeyId": minted_key, "expiration": "Dec 8, 2025, 11:00:00 AM"},
            "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLE:s", "arn": "arn:x"},
        },
    )


def _call(event_id: str, key: str) -> dict[str, object]:
    return make_event(
        eventID=event_id,
        userIdentity={"type": "AssumedRole", "accessKeyId": key, "accountId": "111122223333"},
    )


def test_chains_route_with_their_root() -> None:
    table = RoutingTable()
    route = [
        table.route(parse_record(record))
        for record in (
            _assume("a1", "AKIAROOT", "ASIACHILD1"),
            _call("c1", "ASIACHILD1"),
            _assume("a2", "ASIACHILD1", "ASIACHILD2"),
            _call("c2", "ASIACHILD2"),
            _call("other", "ASIAOTHER"),
        )
    ]
    assert route[:4] == ["key:AKIAROOT"] * 4
    assert route[4] == "key:ASIAOTHER"


def test_events_without_keys_route_by_principal() -> None:
    record = make_event(userIdentity={"type": "AWSService", "invokedBy": "ec2.amazonaws.com"})
    assert own_key(parse_record(record)) == "principal:111122223333:ec2.amazonaws.com"


def test_a_failed_sts_call_mints_nothing() -> None:
    table = RoutingTable()
    table.route(parse_record({**_assume("a1", "AKIAROOT", "ASIACHILD1"), "errorCode": "Denied"}))
    assert table.route(parse_record(_call("c1", "ASIACHILD1"))) == "key:ASIACHILD1"


def test_table_is_bounded_and_survives_a_restart() -> None:
    table = RoutingTable(capacity=2)
    for index in range(5):
        table.route(parse_record(_assume(f"a{index}", "AKIAROOT", f"ASIAC{index}")))
    assert len(table) == 2
    restored = RoutingTable()
    restored.restore(orjson.loads(orjson.dumps(table.snapshot())))
    assert restored.route(parse_record(_call("c", "ASIAC4"))) == "key:AKIAROOT"
    assert restored.route(parse_record(_call("c", "ASIAC0"))) == "key:ASIAC0"


def test_the_demo_agent_broker_chain_routes_together() -> None:
    table = RoutingTable()
    routes = {}
    for record in incident():
        event = parse_record(record)
        routes.setdefault(event.actor.arn or "", set()).add(table.route(event))
    broker = routes["arn:aws:sts::111122223333:assumed-role/AgentBroker/agent-broker"]
    docs = routes["arn:aws:sts::111122223333:assumed-role/AgentDocsRole/agent-claude-7f3e"]
    assert broker == docs and len(broker) == 1
