"""OneWindow across hosts, for real: network namespaces (harness/hosts.py) with HAProxy on an edge host, two app
hosts each with a Rasa instance and an action server, and a data host with its own PostgreSQL cluster and Redis,
every query and lock crossing the veth network. Load through HAProxy, then one fault at a time during load.

Each message's outcome is counted (harness/conversations.py: answered, wrong, apology, http_error, closed,
no_answer). The bound every fault test asserts: no wrong answer and no silent failure ever; a message not
answered was in flight at some moment of the fault and its sender got a clear error at once (an HTTP error status
from HAProxy, the channel's technical apology, or the connection closed before any answer, which is what HAProxy
did instead of a 502 on a kept-alive client connection when a Rasa server died mid-request); every message sent
after the fault ended is answered; the trackers in PostgreSQL hold every answered message once, in the order
sent, followed by its answer (a lost one at most once). What was lost is in each assertion's message (and printed
with `pytest -s`). One topology serves the whole module.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from harness.conversations import ANSWERED, CLEAR_ERRORS, Load, Losses, losses, scripts, tracker_problems
from harness.hosts import Topology, sweep_stale

pytestmark = [pytest.mark.multihost, pytest.mark.stack]

FAULT_CONVERSATIONS = 40
AFTER_FAULT_SECONDS = 4.0  # load keeps going this long after a fault ended: the messages that must all be answered


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("ip", "haproxy", "redis-server", "initdb", "pg_ctl")):
        pytest.skip("needs root, iproute2, haproxy, redis-server and PostgreSQL's initdb/pg_ctl")
    hosts = Topology(apps=2)
    try:
        yield hosts.start()
    finally:
        hosts.stop()
        sweep_stale()


@pytest.fixture(scope="module")
def tracker(topology: Topology) -> Iterator[Engine]:
    """The tracker database on the data host, read from the client host over the veth network."""
    engine = create_engine(topology.database_url("tracker"), future=True, pool_pre_ping=True)  # across the restart
    yield engine
    engine.dispose()


def both_up(topology: Topology) -> None:
    """Before each fault: both app hosts ready and in HAProxy (an earlier test may have left one starting)."""
    topology.wait_ready()
    for role in topology.app_roles:
        topology.wait_haproxy(role, "UP")


def under_load(topology: Topology, name: str, fault: Callable[[], None], tracker: Engine, pause: float = 0.3) -> Losses:
    """FAULT_CONVERSATIONS conversations through HAProxy while `fault()` runs, going on AFTER_FAULT_SECONDS after it
    returns; asserts the bound of every fault test (module docstring) and returns what was lost."""
    both_up(topology)
    load = Load(topology.url, scripts(name, FAULT_CONVERSATIONS, 40), pause).start()
    load.wait_for(2 * FAULT_CONVERSATIONS)
    started = time.monotonic()
    fault()
    ended = time.monotonic()
    time.sleep(AFTER_FAULT_SECONDS)
    load.stop()
    outcomes = load.join()
    found = losses(outcomes, started, ended)
    print(f"\n{name}: {found.report()}")
    later = [o for o in outcomes if o.sent > ended]
    assert later and all(o.kind == ANSWERED for o in later), f"{name}: a message sent after the fault was lost: {found.report()}"
    assert not found.lost_outside, f"{name}: lost beyond the messages in flight: {found.report()}"
    assert all(o.kind in CLEAR_ERRORS for o in found.lost), f"{name}: a lost message without a clear error: {found.report()}"
    problems = tracker_problems(tracker, outcomes)
    assert not problems, f"{name}: trackers in PostgreSQL: {problems[:5]}"
    return found


def test_load_200_conversations_of_10_turns_through_haproxy_to_both_hosts(topology: Topology, tracker: Engine) -> None:
    """200 conversations of 10 turns at once through HAProxy: every message answered once (the answer names the
    service the message asked about, addressed to its sender), every tracker complete in PostgreSQL (user events
    in the order sent, each once, each followed by its answer), both app hosts served turns, and the tracker
    store and the lock store were reached from both app hosts' addresses over the veth network."""
    before = topology.served()
    outcomes = Load(topology.url, scripts("load", 200, 10)).run()
    after = topology.served()
    not_answered = [(o.turn.sender, o.turn.number, o.kind, o.status) for o in outcomes if o.kind != ANSWERED]
    assert len(outcomes) == 2000 and not not_answered, f"{len(not_answered)} of 2000 not answered: {not_answered[:10]}"
    problems = tracker_problems(tracker, outcomes)
    assert not problems, problems[:5]
    served = {server: after[server] - before.get(server, 0) for server in after}
    assert len(served) == 2 and all(count > 0 for count in served.values()), f"turns per Rasa server: {served}"
    apps = {topology.address(role) for role in topology.app_roles}
    assert apps <= set(topology.database_clients()), f"tracker sessions from {topology.database_clients()}, not {apps}"
    assert apps <= set(topology.redis_clients()), f"Redis clients {topology.redis_clients()}, not {apps}"


def test_kill_9_of_a_rasa_instance(topology: Topology, tracker: Engine) -> None:
    """kill -9 of app1's Rasa during load: HAProxy takes it out; lost at most the messages app1 was working on
    (HAProxy's 502 to their senders); the conversations continue on app2 (the dead instance's lock tickets lapse
    within their 3 s lease). The instance is started again afterwards."""
    rasa = "rasa-app1"

    def fault() -> None:
        topology.kill(rasa, signal.SIGKILL)
        topology.wait_haproxy("app1", "DOWN")

    try:
        under_load(topology, "kill-rasa", fault, tracker)
    finally:
        topology.start_program(rasa)


def test_kill_9_and_restart_of_an_action_server(topology: Topology, tracker: Engine) -> None:
    """kill -9 of app1's action server during load, then started again: every Rasa instance reaches the action
    servers through HAProxy, which sends action calls to app2's while app1's is down; lost at most the turns whose
    action call was in flight on the killed server (the channel's apology)."""

    def fault() -> None:
        topology.restart("actions-app1", signal.SIGKILL)

    under_load(topology, "kill-actions", fault, tracker)


def test_postgresql_restart(topology: Topology, tracker: Engine) -> None:
    """pg_ctl restart (fast: open sessions are ended) of the data host's cluster during load: lost at most the
    turns in flight while PostgreSQL was down (the channel's apology); the tracker store reconnects by itself."""
    under_load(topology, "postgres-restart", lambda: topology.postgres("restart", "-m", "fast"), tracker)


def test_redis_restart(topology: Topology, tracker: Engine) -> None:
    """The lock store's Redis stopped (SIGTERM, no persistence: every ticket gone) and started again during load:
    lost at most the messages in flight while it was down; the lock store reconnects with backoff."""

    def fault() -> None:
        topology.kill("redis", signal.SIGTERM)
        topology.start_program("redis")

    under_load(topology, "redis-restart", fault, tracker)


def test_an_app_host_cut_off_and_back(topology: Topology, tracker: Engine) -> None:
    """app1's link to the switch down during load (its programs keep running, unreachable), until HAProxy has
    taken it out and app2 has served alone for 3 s, then up again until HAProxy sends it traffic: lost at most
    the messages app1 held when it was cut."""

    def fault() -> None:
        topology.cut("app1")
        topology.wait_haproxy("app1", "DOWN")
        time.sleep(3)
        topology.reconnect("app1")
        topology.wait_haproxy("app1", "UP")

    under_load(topology, "cut-app1", fault, tracker)


def test_rolling_restart_of_both_rasa_instances_loses_nothing(topology: Topology, tracker: Engine) -> None:
    """SIGTERM to app1's Rasa during load, started again and ready, then the same for app2: readiness goes false at
    once, HAProxy takes the instance out, its turns in flight finish; not one message lost."""

    def fault() -> None:
        for role in topology.app_roles:
            topology.restart(f"rasa-{role}", signal.SIGTERM)
            topology.wait_haproxy(role, "UP")

    found = under_load(topology, "rolling-restart", fault, tracker, pause=1.0)
    assert not found.lost, f"rolling restart: {found.report()}"
