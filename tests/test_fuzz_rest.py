"""REST channel payloads and the HTTP API, generated, through what the stack puts in front (harness.stack.Stack):
any body, content type or chunking on /webhooks/rest/webhook, and any method, path, query and body on the internal
API port with and without a valid token, get an answer below 500 on a connection that stays up, and afterwards the
assistant still answers an ordinary question correctly."""

from __future__ import annotations

import http.client
from typing import Dict, Optional

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.stack import Stack
from onewindow.infra.api_auth import authorization
from tests.fuzz_strategies import (
    METHODS,
    content_types,
    dumps,
    fuzz_settings,
    json_values,
    nested,
    path_segments,
    query_strings,
    raw_bodies,
)

pytestmark = pytest.mark.stack
CONTROL = ("fuzz-rest-control", "how much is a passport renewal?", "100 dollars")


def send(port: int, method: str, path: str, body: Optional[bytes], headers: Dict[str, str], chunked: bool = False) -> int:
    """One request on its own connection; the status (a dropped connection raises)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            method, path, body=iter([body]) if chunked and body else body, headers=headers, encode_chunked=chunked and bool(body)
        )
        answer = connection.getresponse()
        answer.read()
        return answer.status
    finally:
        connection.close()


def still_answers(stack: Stack) -> None:
    sender, question, expected = CONTROL
    assert any(expected in (m.get("text") or "") for m in stack.say(sender, question)), "the control question"


@fuzz_settings(60)
@given(body=raw_bodies, content_type=content_types, query=query_strings, chunked=st.booleans())
@example(body=b"[]", content_type="application/json", query="", chunked=False)
@example(body=b"null", content_type="application/json", query="", chunked=False)
@example(body=b"", content_type="application/json", query="", chunked=False)
@example(body=b'{"message": "hello"}', content_type="application/json", query="", chunked=False)
@example(body=b'{"sender": "x", "message": "hi", "metadata": [1]}', content_type="application/json", query="", chunked=False)
@example(body=nested(100_000), content_type="application/json", query="", chunked=True)
def test_any_rest_payload_gets_an_answer_below_500(
    stack: Stack, body: bytes, content_type: str, query: str, chunked: bool
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    status = send(stack.rasa_port, "POST", f"/webhooks/rest/webhook?{query}", body, headers, chunked)
    assert status < 500, (status, body[:200])
    still_answers(stack)


@fuzz_settings(60)
@given(
    method=st.sampled_from(METHODS),
    segments=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "conversations",
                    "tracker",
                    "events",
                    "model",
                    "parse",
                    "status",
                    "execute",
                    "trigger_intent",
                    "predict",
                    "messages",
                    "story",
                ]
            ),
            path_segments,
        ),
        min_size=1,
        max_size=4,
    ),
    query=query_strings,
    body=st.one_of(st.none(), json_values.map(dumps), raw_bodies),
    signed=st.booleans(),
)
def test_any_api_request_gets_an_answer_below_500(
    stack: Stack, method: str, segments: list, query: str, body: Optional[bytes], signed: bool
) -> None:
    from urllib.parse import quote

    path = "/" + "/".join(quote(segment, safe="%:") for segment in segments) + (f"?{query}" if query else "")
    if "model" in segments and method in ("PUT", "DELETE", "POST"):
        return  # loading, unloading or training a model is an operator's act, tested in tests/test_api_auth.py
    headers = {"Content-Type": "application/json", **(authorization(stack.api_secret) if signed else {})}
    status = send(stack.api_port, method, path, body if method not in ("GET", "HEAD") else None, headers)
    assert status < 500, (status, method, path, (body or b"")[:200])
    still_answers(stack)
