"""The conversation metrics of the real stack move by exactly what citizens sent (Prometheus text parsed).

Messages and turn times are counted by the REST channel and intents by the last NLU step, on the Rasa server's
/metrics; misunderstood messages by the fallback action, on the action server's /metrics.
"""

from __future__ import annotations

import uuid
from typing import Dict, Tuple

from prometheus_client.parser import text_string_to_metric_families

from harness.stack import Stack, http_get

Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert body, f"no /metrics on port {port}"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, found), value in samples.items() if sample == name and wanted <= set(found))


def test_messages_turns_and_intents_are_counted_once_per_message(stack: Stack) -> None:
    instance = stack.instance_ports[0]
    before = scrape(instance)
    sender = f"metrics-{uuid.uuid4().hex[:8]}"
    messages = ["hello", "what are your opening hours", "thank you"]
    for text in messages:
        assert stack.say(sender, text)
    after = scrape(instance)
    sent = len(messages)
    assert (
        total(after, "onewindow_messages_total", channel="rest") - total(before, "onewindow_messages_total", channel="rest")
        == sent
    )
    assert (
        total(after, "onewindow_turn_seconds_count", channel="rest")
        - total(before, "onewindow_turn_seconds_count", channel="rest")
        == sent
    )
    assert total(after, "onewindow_intents_total") - total(before, "onewindow_intents_total") == sent
    assert total(after, "onewindow_intents_total", intent="greet") > total(before, "onewindow_intents_total", intent="greet")
    assert sender not in (http_get(f"http://127.0.0.1:{instance}/metrics") or b"").decode()


def test_a_misunderstood_message_counts_one_fallback(stack: Stack) -> None:
    before = scrape(stack.actions_port)
    sender = f"metrics-{uuid.uuid4().hex[:8]}"
    assert stack.say(sender, "hello")
    assert stack.say(sender, "zxqv blorft wugga")
    after = scrape(stack.actions_port)
    assert total(after, "onewindow_fallbacks_total") - total(before, "onewindow_fallbacks_total") == 1
    assert total(after, "onewindow_fallbacks_total", kind="nlu") - total(before, "onewindow_fallbacks_total", kind="nlu") == 1
