"""One callback-URL parser for submit and send: what it refuses, and what it sends exactly as given."""

from __future__ import annotations

import json
import re

import pytest

from callbacks.delivery import deliver
from callbacks.url_policy import CallbackUrlError, check_callback_url, parse_callback_url
from tests.callbacks.receiver import Receiver

EVERYTHING = ["0.0.0.0/0", "::/0", "example.com"]  # the address policy lets all through: only the form is tested


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://exa\tmple.com/hook", "U+0009"),
        ("http://example.com\t/hook", "U+0009"),
        ("http://example.com/ho\rok", "U+000D"),
        ("http://example.com/ho\nok", "U+000A"),
        ("http://example.com/ho\x00ok", "U+0000"),
        ("http://example.com/a b", "%20"),
        ("http://example.com/\u200bhook", "ZERO WIDTH SPACE"),
        ("http://example.com/hook?x=\x7f", "U+007F"),
        ("http://\uff11\uff12\uff17.0.0.1/hook", "non-ASCII digit '１'"),
        ("http://\u2460\u2461\u2466.0.0.1/hook", "non-ASCII digit '①'"),
        ("http://127.0.0.\u0661/hook", "non-ASCII digit"),
        ("http://ｅｘａｍｐｌｅ.com/hook", "internationalised domain name"),
        ("http://example\u3002com/hook", "internationalised domain name"),
        ("http://%31%32%37.0.0.1/hook", "only letters, digits"),
        ("http://exa!mple.com/hook", "only letters, digits"),
        ("http://[v1.x]/hook", "IPv6 address"),
        ("http://[fe80::1%25eth0]/hook", "IPv6 address"),
        ("http://example.com:0/hook", "port 0"),
        ("http://example.com:８０/hook", "malformed"),
        ("http://example.com/hook?s=%2f", "'%2f'"),
        ("http://example.com/hook?s=100%", "'%'"),
        ("http://example.com/hook%zz", "'%zz'"),
    ],
)
def test_parse_refuses_what_the_sender_could_not_send(url: str, message: str) -> None:
    with pytest.raises(CallbackUrlError, match=re.escape(message)) as info:
        check_callback_url(url, EVERYTHING)
    assert "hook" not in str(info.value)  # the message names the problem, never the URL (its query may be a token)


def test_parse_keeps_the_query_exactly_and_names_the_host_header() -> None:
    url = "https://N8N.example.com:5678/webhook-waiting/42?signature=AbC%2Fd%2Be&x=1&x=2&empty=&a=b?c:d@e/f'*"
    target = parse_callback_url(url)
    assert target.request_uri == "/webhook-waiting/42?signature=AbC%2Fd%2Be&x=1&x=2&empty=&a=b?c:d@e/f'*"
    assert (target.scheme, target.host, target.port, target.host_header) == (
        "https", "n8n.example.com", 5678, "n8n.example.com:5678")
    assert parse_callback_url("http://example.com").request_uri == "/"
    assert parse_callback_url("http://example.com/a#frag").request_uri == "/a"
    assert parse_callback_url("http://[2606:4700::1]/").host_header == "[2606:4700::1]"


def test_parse_encodes_an_internationalised_host_and_non_ascii_path() -> None:
    target = parse_callback_url("https://bücher.example/häken?q=ü&s=%2F&p=a|b")
    assert target.host == "xn--bcher-kva.example"
    assert target.request_uri == "/h%C3%A4ken?q=%C3%BC&s=%2F&p=a%7Cb"


def test_deliver_sends_path_and_query_as_parsed(receiver: Receiver) -> None:
    path = "/webhook-waiting/7?signature=9f3b%2Fab%3D&b=%7E&c=~!$'()*+,;=:@/?"
    result = deliver(receiver.url(path), json.dumps({"a": 1}).encode(), {}, allowed_hosts=["127.0.0.1"])
    assert result.outcome == "delivered"
    assert receiver.requests[0].path == path


def test_deliver_gives_up_on_a_url_the_parser_refuses(receiver: Receiver) -> None:
    result = deliver(receiver.url("/ho\nok"), b"{}", {}, allowed_hosts=["127.0.0.1"])
    assert result.outcome == "give_up" and "U+000A" in (result.error or "")
    assert receiver.requests == []
