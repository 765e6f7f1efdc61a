"""Request bodies WeChat's webhook must refuse, with the status expected (unit and e2e tests)."""

import pytest

HOSTILE_WECHAT_BODIES = [
    pytest.param(b"not xml at all", 400, id="non-xml"),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><ToUserName>gh</ToUserName><Encrypt>&xxe;</Encrypt></xml>",
        400,
        id="xxe",
    ),
    pytest.param(
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<xml><Encrypt>&lol2;</Encrypt></xml>",
        400,
        id="billion-laughs",
    ),
    pytest.param(b"<xml><Encrypt>" + b"A" * 200_000 + b"</Encrypt></xml>", 413, id="oversized"),
]
