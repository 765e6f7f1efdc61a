"""WeChat protocol: wechatpy's public test vectors and samples, signatures, hostile bodies."""

import time

import pytest
import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto

from connectors.wechat import protocol
from connectors.wechat.protocol import (
    MAX_BODY_BYTES,
    WeChatCodec,
    WeChatRequestError,
    parse_inbound,
    sign,
    signature_matches,
)
from fakes.wechat_user import WeChatUser, wechat_signature

# wechatpy tests/test_crypto.py (public test vector)
TOKEN = "123456"
AES_KEY = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
APP_ID = "wx49f0ab532d5d035a"
VECTOR_TIMESTAMP = "1411525903"
VECTOR_NONCE = "461056294"
VECTOR_SIGNATURE = "74d92dfeb87ba7c714f89d98870ae5eb62dff26d"
VECTOR_ENVELOPE = b"""<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>
<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>
<AgentID><![CDATA[1]]></AgentID>
</xml>"""
VECTOR_REPLY = """<xml>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[test]]></Content>
<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>
<ToUserName><![CDATA[messense]]></ToUserName>
<AgentID>1</AgentID>
<CreateTime>1411525903</CreateTime>
</xml>"""
VECTOR_REPLY_ENCRYPT = (
    "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGs"
    "L8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSj"
    "PUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJv"
    "FurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFY"
    "FMNMpatF9XiKzHo3"
)
VECTOR_QUERY = {
    "timestamp": VECTOR_TIMESTAMP,
    "nonce": VECTOR_NONCE,
    "msg_signature": VECTOR_SIGNATURE,
    "encrypt_type": "aes",
}


def vector_codec() -> WeChatCodec:
    return WeChatCodec(TOKEN, APP_ID, AES_KEY, clock=lambda: float(VECTOR_TIMESTAMP) + 1)


# wechatpy tests/test_parser.py (public samples; voice gets the Recognition WeChat adds)
TEXT_XML = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[fromUser]]></FromUserName>
 <CreateTime>1348831860</CreateTime>
<MsgType><![CDATA[text]]></MsgType>
<Content><![CDATA[this is a test]]></Content>
<MsgId>1234567890123456</MsgId>
</xml>"""
IMAGE_XML = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[fromUser]]></FromUserName>
<CreateTime>1348831860</CreateTime>
<MsgType><![CDATA[image]]></MsgType>
<PicUrl><![CDATA[this is a url]]></PicUrl>
<MediaId><![CDATA[media_id]]></MediaId>
<MsgId>1234567890123456</MsgId>
</xml>"""
VOICE_XML = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[fromUser]]></FromUserName>
<CreateTime>1357290913</CreateTime>
<MsgType><![CDATA[voice]]></MsgType>
<MediaId><![CDATA[media_id]]></MediaId>
<Format><![CDATA[Format]]></Format>
<Recognition><![CDATA[腾讯微信团队]]></Recognition>
<MsgId>1234567890123456</MsgId>
</xml>"""
SUBSCRIBE_XML = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe]]></Event>
</xml>"""
CLICK_XML = """<xml>
<ToUserName><![CDATA[toUser]]></ToUserName>
<FromUserName><![CDATA[FromUser]]></FromUserName>
<CreateTime>123456789</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[CLICK]]></Event>
<EventKey><![CDATA[EVENTKEY]]></EventKey>
</xml>"""

XXE = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<xml><ToUserName>gh</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
    b"<MsgType>text</MsgType><Content>&xxe;</Content><Encrypt>&xxe;</Encrypt></xml>"
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<xml><MsgType>text</MsgType><Content>&lol3;</Content><Encrypt>&lol3;</Encrypt></xml>"
)
HOSTILE = {
    "non-xml": b"not xml at all",
    "xxe": XXE,
    "billion-laughs": LAUGHS,
    "empty-root": b"<xml/>",
    "other-root": b"<foo><MsgType>text</MsgType></foo>",
    "nested-fields": b"<xml><MsgType><a>1</a></MsgType><Encrypt><b/></Encrypt></xml>",
    "latin1": b"<xml><Content>\xff\xfe</Content></xml>",
    "empty": b"",
}


# ---------------------------------------------------------------- public vectors


def test_the_public_crypto_vector_decrypts_with_an_injected_clock() -> None:
    message = vector_codec().open(VECTOR_QUERY, VECTOR_ENVELOPE)
    assert message.msg_type == "text"
    assert message.content == "test"
    assert message.source == "messense"
    assert message.target == APP_ID


def test_the_public_vector_is_a_replay_today() -> None:
    codec = WeChatCodec(TOKEN, APP_ID, AES_KEY)  # the real clock: 2014 is long gone
    with pytest.raises(WeChatRequestError) as refused:
        codec.open(VECTOR_QUERY, VECTOR_ENVELOPE)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "change",
    [
        {"msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26e"},
        {"msg_signature": ""},
        {"msg_signature": "签名"},
        {"nonce": "461056295"},
        {"timestamp": "1411525904"},
    ],
)
def test_a_forged_vector_is_refused(change: dict[str, str]) -> None:
    with pytest.raises(WeChatRequestError) as refused:
        vector_codec().open({**VECTOR_QUERY, **change}, VECTOR_ENVELOPE)
    assert refused.value.status == 403


def test_the_simulator_encrypts_the_public_reply_vector() -> None:
    user = WeChatUser(TOKEN, APP_ID, AES_KEY, "messense")
    encrypted = user.encrypt(VECTOR_REPLY, random_prefix=b"1234567890123456")
    assert encrypted == VECTOR_REPLY_ENCRYPT
    assert user.decrypt(VECTOR_REPLY_ENCRYPT) == VECTOR_REPLY


def test_the_simulator_and_wechatpy_agree_both_ways() -> None:
    user = WeChatUser(TOKEN, APP_ID, AES_KEY, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    crypto = WeChatCrypto(TOKEN, AES_KEY, APP_ID)
    query, body = user.signed_query(user.text_xml("你好，世界", 42))
    inner = crypto.decrypt_message(body, query["msg_signature"], query["timestamp"], query["nonce"])
    assert xmltodict.parse(inner)["xml"]["Content"] == "你好，世界"
    reply = crypto.encrypt_message(
        "<xml><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[收到]]></Content></xml>",
        query["nonce"],
        query["timestamp"],
    )
    assert user.read_reply(reply.encode(), query) == {"MsgType": "text", "Content": "收到"}


def test_the_simulator_checks_the_reply_signature() -> None:
    user = WeChatUser(TOKEN, APP_ID, AES_KEY, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    query, _ = user.signed_query("<xml/>")
    reply = WeChatCrypto("another-token", AES_KEY, APP_ID).encrypt_message(
        "<xml/>", query["nonce"], query["timestamp"]
    )
    with pytest.raises(ValueError, match="MsgSignature"):
        user.read_reply(reply.encode(), query)
    assert user.read_reply(b"success", query) is None
    assert user.read_reply(b"", query) is None


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("xml", "expected"),
    [
        (TEXT_XML, {"msg_type": "text", "content": "this is a test", "msg_id": "1234567890123456"}),
        (IMAGE_XML, {"msg_type": "image", "content": "", "msg_id": "1234567890123456"}),
        (VOICE_XML, {"msg_type": "voice", "content": "腾讯微信团队", "create_time": 1357290913}),
        (SUBSCRIBE_XML, {"msg_type": "event", "event": "subscribe", "msg_id": ""}),
        (CLICK_XML, {"msg_type": "event", "event": "click", "event_key": "EVENTKEY"}),
    ],
    ids=["text", "image", "voice", "subscribe", "click"],
)
def test_public_parser_samples(xml: str, expected: dict[str, object]) -> None:
    message = parse_inbound(xml)
    for name, value in expected.items():
        assert getattr(message, name) == value
    assert message.msg_type == parse_message(xml).type  # wechatpy agrees


def test_dedup_keys() -> None:
    assert parse_inbound(TEXT_XML).dedup_key == "wechat:msg:1234567890123456"
    assert parse_inbound(CLICK_XML).dedup_key == "wechat:event:FromUser:123456789:click:EVENTKEY"


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_xml_is_a_400(body: bytes) -> None:
    with pytest.raises(WeChatRequestError) as refused:
        parse_inbound(body)
    assert refused.value.status == 400


def test_fields_are_required() -> None:
    for xml in (
        "<xml><MsgType>text</MsgType></xml>",
        "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName>"
        "<CreateTime>x</CreateTime><MsgType>text</MsgType></xml>",
    ):
        with pytest.raises(WeChatRequestError):
            parse_inbound(xml)


# ---------------------------------------------------------------- signatures


def test_signature_is_sha1_of_the_sorted_values() -> None:
    assert sign("b", "a", "c") == wechat_signature("c", "b", "a")
    assert sign(TOKEN, VECTOR_TIMESTAMP, VECTOR_NONCE, "x") != sign(TOKEN, VECTOR_TIMESTAMP, "x")


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = protocol.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(protocol.hmac, "compare_digest", spy)
    expected = sign("t", "1", "2")
    assert signature_matches(expected, expected)
    assert not signature_matches(expected, "0" * 40)
    assert not signature_matches(expected, "非ASCII签名")  # no TypeError from compare_digest
    assert not signature_matches(expected, None)
    assert not signature_matches(expected, "")
    assert len(calls) == 3
    vector_codec().open(VECTOR_QUERY, VECTOR_ENVELOPE)
    assert len(calls) == 4


def plain_codec(now: float | None = None) -> WeChatCodec:
    return WeChatCodec("kefu-token", APP_ID, clock=(lambda: now) if now else time.time)


def plain_user() -> WeChatUser:
    return WeChatUser("kefu-token", APP_ID, None, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")


def test_handshake_echoes_for_a_valid_signature_only() -> None:
    query, _ = plain_user().signed_query("")
    assert plain_codec().handshake({**query, "echostr": "4711"}) == "4711"
    for forged in (
        {**query, "signature": "0" * 40},
        {key: value for key, value in query.items() if key != "signature"},
        {key: value for key, value in query.items() if key != "nonce"},
        {**query, "timestamp": "yesterday"},
        {**query, "timestamp": "9" * 5000},
    ):
        with pytest.raises(WeChatRequestError) as refused:
            plain_codec().handshake({**forged, "echostr": "4711"})
        assert refused.value.status == 403
    with pytest.raises(WeChatRequestError) as refused:
        plain_codec().handshake(query)
    assert refused.value.status == 400


def test_requests_outside_the_replay_window_are_refused() -> None:
    query, _ = plain_user().signed_query("", timestamp="1700000000")
    assert plain_codec(now=1700000000 + 299).handshake({**query, "echostr": "e"}) == "e"
    for now in (1700000000 + 301, 1700000000 - 301):
        with pytest.raises(WeChatRequestError) as refused:
            plain_codec(now=now).handshake({**query, "echostr": "e"})
        assert refused.value.status == 403


def test_plain_message_opens() -> None:
    user = plain_user()
    query, body = user.signed_query(user.text_xml("你好", 7))
    message = plain_codec().open(query, body)
    assert (message.msg_type, message.content, message.msg_id) == ("text", "你好", "7")
    assert message.source == user.openid


def test_plain_message_with_a_forged_signature_is_a_403() -> None:
    user = plain_user()
    query, body = user.signed_query(user.text_xml("你好", 7))
    with pytest.raises(WeChatRequestError) as refused:
        plain_codec().open({**query, "signature": "0" * 40}, body)
    assert refused.value.status == 403


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_plain_bodies_with_a_valid_signature_are_a_400(body: bytes) -> None:
    query, _ = plain_user().signed_query("")
    with pytest.raises(WeChatRequestError) as refused:
        plain_codec().open(query, body)
    assert refused.value.status == 400


def safe_user() -> WeChatUser:
    return WeChatUser(TOKEN, APP_ID, AES_KEY, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")


def safe_codec() -> WeChatCodec:
    return WeChatCodec(TOKEN, APP_ID, AES_KEY)


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_envelopes_are_a_400(body: bytes) -> None:
    user = safe_user()
    query, _ = user.signed_query(user.text_xml("hi", 1))
    with pytest.raises(WeChatRequestError) as refused:
        safe_codec().open(query, body)
    assert refused.value.status == 400


@pytest.mark.parametrize("inner", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_messages_inside_a_valid_envelope_are_a_400(inner: bytes) -> None:
    user = safe_user()
    query, body = user.signed_query(inner.decode("utf-8", errors="replace"))
    with pytest.raises(WeChatRequestError) as refused:
        safe_codec().open(query, body)
    assert refused.value.status == 400


def test_garbage_ciphertext_with_a_valid_signature_is_a_400() -> None:
    user = safe_user()
    timestamp, nonce = str(int(time.time())), "1"
    for encrypt in ("bm90IGNpcGhlcnRleHQ=", "!!!", "A" * 64):
        query = {
            "timestamp": timestamp,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": wechat_signature(TOKEN, timestamp, nonce, encrypt),
        }
        body = f"<xml><Encrypt>{encrypt}</Encrypt></xml>".encode()
        with pytest.raises(WeChatRequestError) as refused:
            safe_codec().open(query, body)
        assert refused.value.status == 400, encrypt
    other_app = WeChatUser(TOKEN, "wx0000000000000000", AES_KEY, user.openid)
    query, body = other_app.signed_query(other_app.text_xml("hi", 1))
    with pytest.raises(WeChatRequestError):
        safe_codec().open(query, body)


def test_modes_must_match() -> None:
    user = safe_user()
    query, body = user.signed_query(user.text_xml("hi", 1))
    with pytest.raises(WeChatRequestError) as refused:
        WeChatCodec(TOKEN, APP_ID).open(query, body)
    assert refused.value.status == 400
    plain = plain_user()
    query, body = plain.signed_query(plain.text_xml("hi", 1))
    with pytest.raises(WeChatRequestError) as refused:
        WeChatCodec("kefu-token", APP_ID, AES_KEY).open(query, body)
    assert refused.value.status == 400


def test_oversized_bodies_are_a_413() -> None:
    query, _ = plain_user().signed_query("")
    with pytest.raises(WeChatRequestError) as refused:
        plain_codec().open(query, b"<xml>" + b"A" * MAX_BODY_BYTES + b"</xml>")
    assert refused.value.status == 413


def test_bad_encoding_aes_keys_are_refused() -> None:
    for key in ("short", AES_KEY[:-1] + "!", AES_KEY + "A"):
        with pytest.raises(ValueError, match="43-character"):
            WeChatCodec(TOKEN, APP_ID, key)


# ---------------------------------------------------------------- replies


def test_plain_reply_is_wechatpy_xml() -> None:
    message = parse_inbound(TEXT_XML)
    reply = xmltodict.parse(plain_codec().render_reply(message, "您好", {}))["xml"]
    assert reply["MsgType"] == "text"
    assert reply["Content"] == "您好"
    assert (reply["FromUserName"], reply["ToUserName"]) == ("toUser", "fromUser")


def test_reply_text_cannot_break_out_of_cdata() -> None:
    message = parse_inbound(TEXT_XML)
    text = "a]]><MsgType>news</MsgType>b"
    reply = xmltodict.parse(plain_codec().render_reply(message, text, {}))["xml"]
    assert reply["Content"] == text and reply["MsgType"] == "text"


def test_safe_reply_is_encrypted_and_signed_for_the_request() -> None:
    user = safe_user()
    query, body = user.signed_query(user.text_xml("你好", 9))
    codec = safe_codec()
    message = codec.open(query, body)
    rendered = codec.render_reply(message, "收到，马上为您处理。", query)
    assert "收到" not in rendered
    reply = user.read_reply(rendered.encode(), query)
    assert reply is not None
    assert reply["Content"] == "收到，马上为您处理。"
    assert reply["ToUserName"] == user.openid
