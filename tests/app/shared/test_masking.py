"""Masking personal data in logs: what is masked, what is left alone, and the log filter."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable, Iterator

import pytest

from kefu_shared.masking import (
    DEFAULT_LOGGERS,
    PersonalDataFilter,
    install_log_masking,
    mask_personal_data,
)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # Mobile numbers keep the first 3 and the last 4 digits.
        ("13812345678", "138****5678"),
        ("我的手机是13812345678，谢谢", "我的手机是138****5678，谢谢"),
        ("phone: 19912345678.", "phone: 199****5678."),
        ("138 1234 5678", "138****5678"),
        ("138-1234-5678", "138****5678"),
        ("+86 13812345678", "+86 138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("电话13812345678和15987654321", "电话138****5678和159****4321"),
        # Resident ID numbers keep the first 3 and the last 4 characters.
        ("身份证号110101199003071234", "身份证号110****1234"),
        ("ID 44030419851231002X ok", "ID 440****002X ok"),
        ("id 44030419851231002x", "id 440****002x"),
        # Emails keep the first letter and the domain.
        ("alice@example.com", "a***@example.com"),
        ("mail me at bob.smith+kefu@mail.example.co.uk!", "mail me at b***@mail.example.co.uk!"),
        ("邮箱：zhang_san@qq.com。", "邮箱：z***@qq.com。"),
        # Chinese street addresses keep the province, city and district.
        (
            "地址：广东省深圳市南山区科技园路1号3栋501室，麻烦尽快",
            "地址：广东省深圳市南山区***，麻烦尽快",
        ),
        ("上海市浦东新区张江路88弄5号1201室", "上海市浦东新区***"),
        ("北京市朝阳区望京小区3号楼2单元", "北京市朝阳区***"),
        ("寄到浙江省杭州市西湖区文三路478号", "寄到浙江省杭州市西湖区***"),
        ("四川省成都市武侯区人民南路四段12号", "四川省成都市武侯区***"),
        # English street addresses keep the street word.
        ("221B Baker Street", "*** Street"),
        ("ship to 221B Baker Street, London", "ship to *** Street, London"),
        ("1600 Pennsylvania Ave NW", "*** Ave NW"),
        ("12 baker st.", "*** st."),
        ("deliver to 350 Fifth Avenue please", "deliver to *** Avenue please"),
        ("我住在12 Baker Street", "我住在*** Street"),
        ("10 Downing St", "*** St"),
        # Several kinds at once.
        (
            "张三 13812345678 zhang@example.com 上海市浦东新区张江路88弄5号",
            "张三 138****5678 z***@example.com 上海市浦东新区***",
        ),
    ],
)
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单号 KF202611200001",
        "KF202611200001",
        "order KF202611200001 and KF202611200020",
        "工单 TK202611220001 已创建",
        "TK202611220001",
        "金额 ¥1399.00",
        "退款 1399 元",
        "paid 13800 yuan",
        "$1,399.00",
        "日期 2026-11-20",
        "2026年11月20日 15:30",
        "20261120",
        "due 2026-11-22T07:30:00+00:00",
        "timestamp 1732000000000",
        "12345678901",  # 11 digits, not a mobile number (starts with 12)
        "version 1.13812345678",
        "I ordered 2 phones on Main Street",
        "paid 1399 yuan on Main Street",
        "3 days on the road",
        "我在超市买的3号商品坏了",
        "上海市的快递太慢了，3号到的",
        "北京市朝阳区",
        "please email support",
        "a@b",
        "",
    ],
)
def test_other_data_is_left_alone(text: str) -> None:
    assert mask_personal_data(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "13812345678 110101199003071234 alice@example.com",
        "广东省深圳市南山区科技园路1号3栋501室",
        "221B Baker Street",
    ],
)
def test_masking_twice_changes_nothing_more(text: str) -> None:
    once = mask_personal_data(text)
    assert once != text
    assert mask_personal_data(once) == once


# --- the log filter ----------------------------------------------------------------------------


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own writing to a string (not to the root logger's handlers)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("kefu.test.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


Install = Callable[[Iterable[str]], int]


@pytest.fixture
def install() -> Iterator[Install]:
    """`install_log_masking`, undone afterwards (pytest's own log handlers sit on the root).

    Filters an earlier test left on the root's handlers (the web app installs them when it
    starts) are taken off for the test and put back afterwards.
    """
    touched: list[tuple[logging.Handler, list[object]]] = []
    earlier = [
        (handler, found)
        for handler in logging.getLogger().handlers
        for found in handler.filters
        if isinstance(found, PersonalDataFilter)
    ]
    for handler, found in earlier:
        handler.removeFilter(found)

    def run(names: Iterable[str]) -> int:
        names = list(names)
        loggers = [logging.getLogger(), *(logging.getLogger(name) for name in names)]
        touched.extend((h, list(h.filters)) for logger in loggers for h in logger.handlers)
        return install_log_masking(names)

    yield run
    for handler, filters in touched:
        for added in [f for f in handler.filters if f not in filters]:
            handler.removeFilter(added)
    for handler, found in earlier:
        handler.addFilter(found)


def test_log_filter_masks_messages_and_their_arguments(
    captured: tuple[logging.Logger, io.StringIO], install: Install
) -> None:
    logger, stream = captured
    install([logger.name])
    assert any(isinstance(f, PersonalDataFilter) for f in logger.handlers[0].filters)
    logger.info("customer %s, phone %s", "alice@example.com", "13812345678")
    logger.warning("order KF202611200001 to 上海市浦东新区张江路88弄5号1201室")
    assert stream.getvalue().splitlines() == [
        "INFO kefu.test.masking customer a***@example.com, phone 138****5678",
        "WARNING kefu.test.masking order KF202611200001 to 上海市浦东新区***",
    ]


def test_without_the_filter_nothing_is_masked(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("phone %s", "13812345678")
    assert stream.getvalue() == "INFO kefu.test.masking phone 13812345678\n"


def test_log_filter_masks_tracebacks(
    captured: tuple[logging.Logger, io.StringIO], install: Install
) -> None:
    logger, stream = captured
    install([logger.name])
    try:
        raise ValueError("bad phone 13812345678")
    except ValueError:
        logger.exception("failed for %s", "bob@example.com")
    output = stream.getvalue()
    assert "failed for b***@example.com" in output
    assert "ValueError: bad phone 138****5678" in output
    assert "Traceback" in output
    assert "13812345678" not in output and "bob@" not in output


def test_installing_twice_adds_one_filter(
    captured: tuple[logging.Logger, io.StringIO], install: Install
) -> None:
    logger, _ = captured
    root = logging.getLogger()
    root_handler = logging.StreamHandler(io.StringIO())
    root.addHandler(root_handler)
    try:
        handlers = list(dict.fromkeys([*root.handlers, *logger.handlers]))  # each once
        assert install([logger.name]) == len(handlers)
        assert install([logger.name]) == 0
        for handler in handlers:
            assert sum(isinstance(f, PersonalDataFilter) for f in handler.filters) == 1
    finally:
        root.removeHandler(root_handler)


def test_the_root_logger_is_covered(install: Install) -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        install(())
        logging.getLogger("kefu.test.masking.propagating").warning("call 13812345678")
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == "call 138****5678\n"


def test_default_loggers_are_uvicorns() -> None:
    assert DEFAULT_LOGGERS == ("uvicorn", "uvicorn.access")


def test_the_filter_keeps_every_record() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "n=%d", ("not a number",), None)
    assert PersonalDataFilter().filter(record) is True
    assert record.msg == "n=%d" and record.args == ("not a number",)  # the handler reports it
    record = logging.LogRecord("x", logging.INFO, __file__, 1, {"phone": "13812345678"}, (), None)
    assert PersonalDataFilter().filter(record) is True
    assert record.msg == "{'phone': '138****5678'}" and record.args == ()


def test_formatters_that_read_the_arguments_still_work() -> None:
    from uvicorn.logging import AccessFormatter

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/desk?phone=13812345678", "1.1", 200), None,
    )  # fmt: skip
    assert PersonalDataFilter().filter(record)
    line = AccessFormatter("%(client_addr)s %(request_line)s %(status_code)s").format(record)
    assert "13812345678" not in line and "GET /desk?phone=138" in line and "200" in line


def test_objects_in_the_arguments_are_masked() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "%s", ({"phone": "13812345678"},), None
    )
    PersonalDataFilter().filter(record)
    assert "13812345678" not in record.getMessage()


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "POST http://127.0.0.1:5005/conversations/web%3Aab/tracker/events"
            "?token=e2e-test-token-0123456789&output_channel=latest",
            "POST http://127.0.0.1:5005/conversations/web%3Aab/tracker/events"
            "?token=****&output_channel=latest",
        ),
        ("GET /status?token=s3cret", "GET /status?token=****"),
        ("url ...?access_token=abc.def-1 ok", "url ...?access_token=**** ok"),
        ("Authorization: Bearer eyJhbGciOi.J9-x_y", "Authorization: Bearer ****"),
        ("authorization: bearer abc", "authorization: bearer ****"),
        (
            "HTTP Request: POST https://api.telegram.org/bot123456:kefu-e2e-telegram-token"
            '/sendMessage "HTTP/1.1 200 OK"',
            "HTTP Request: POST https://api.telegram.org/bot123456:****"
            '/sendMessage "HTTP/1.1 200 OK"',
        ),
        ("token 1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ", "token 1234567890:****"),
        ("rasa run --auth-token s3cret --port 5005", "rasa run --auth-token **** --port 5005"),
    ],
)
def test_secrets_are_masked(text: str, masked: str) -> None:
    assert mask_personal_data(text) == masked
    assert mask_personal_data(masked) == masked


@pytest.mark.parametrize(
    "text",
    ["the token is missing", "12:30 today", "robot123:ok", "Bearer", "KF202611200001:shipped"],
)
def test_text_like_secrets_is_left_alone(text: str) -> None:
    assert mask_personal_data(text) == text


def test_log_filter_masks_tokens_in_url_arguments(
    captured: tuple[logging.Logger, io.StringIO], install: Install
) -> None:
    logger, stream = captured
    install([logger.name])
    logger.info('HTTP Request: %s %s "%s"', "POST", "http://h/x?token=abc&y=1", "200 OK")
    assert (
        stream.getvalue()
        == 'INFO kefu.test.masking HTTP Request: POST http://h/x?token=****&y=1 "200 OK"\n'
    )


# --- linear time -------------------------------------------------------------------------------

_N = 10_000
WORST_CASES = {
    "市": "市" * _N,
    "省": "省" * _N,
    "区": "区" * _N,
    "县": "县" * _N,
    "汉字": "好" * _N,
    "市路": "市路" * (_N // 2),
    "市…路": "市" * (_N // 2) + "路" * (_N // 2),
    "市1": "市1" * (_N // 2),
    "市号": "市" + "号" * _N,
    "市路号": "上海市浦东新区张江路" + "1号" * (_N // 2),
    "addresses": "上海市浦东新区张江" * (_N // 9),
    "digits": "1" * _N,
    "digits and spaces": "1 " * (_N // 2),
    "digits and dashes": "138-" * (_N // 4),
    "+86": "+86 " * (_N // 4),
    "@": "@" * _N,
    "a@": "a@" * (_N // 2),
    "letters then @": "a" * _N + "@",
    "dots then @": "a" + "." * _N + "@",
    "a.": "a@" + "a." * (_N // 2),
    "words": "12 " + "Baker " * (_N // 6),
    "number words": "1" + " a" * (_N // 2),
    "spaces": "1" + " " * _N + "x",
    "token=": "token=" * (_N // 6),
    "Bearer": "Bearer " * (_N // 7),
    "bot": "bot" + "1" * _N,
    "bot:": "bot1:" * (_N // 5),
    "digits:": "12345:" * (_N // 6),
}


@pytest.mark.parametrize("text", WORST_CASES.values(), ids=WORST_CASES.keys())
def test_masking_takes_linear_time_on_worst_cases(text: str) -> None:
    started = time.perf_counter()
    mask_personal_data(text)
    assert time.perf_counter() - started < 0.5


def test_httpx_request_lines_lose_their_tokens(
    captured: tuple[logging.Logger, io.StringIO], install: Install
) -> None:
    import httpx

    logger, stream = captured
    httpx_logger = logging.getLogger("httpx")
    handler = logger.handlers[0]
    httpx_logger.addHandler(handler)
    level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)
    install(["httpx"])
    try:
        transport = httpx.MockTransport(lambda request: httpx.Response(204))
        with httpx.Client(transport=transport) as client:
            client.post(
                "http://127.0.0.1:5005/conversations/web:1/tracker/events",
                params={"token": "rasa-token-0123456789", "output_channel": "latest"},
            )
            client.post("https://api.telegram.org/bot123456:kefu-telegram-secret/sendMessage")
    finally:
        httpx_logger.removeHandler(handler)
        httpx_logger.setLevel(level)
    output = stream.getvalue()
    assert "HTTP Request: POST" in output and "token=****&output_channel=latest" in output
    assert "bot123456:****/sendMessage" in output
    assert "rasa-token-0123456789" not in output and "kefu-telegram-secret" not in output
