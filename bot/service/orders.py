"""The order store the bot answers from, and the demo shop's orders."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.core.db import Order, OrderStatus, session_factory

ORDER_NUMBER = re.compile(r"^KF\d{12}$")
"""Order numbers: `KF`, the order date (yyyymmdd) and a 4-digit sequence."""


class InvalidOrderNumber(ValueError):
    """Text that is not an order number of the form KF + 12 digits."""


def normalize_order_number(text: str) -> str:
    """Returns the canonical order number (upper case, no blanks) or raises `InvalidOrderNumber`."""
    candidate = re.sub(r"[\s\-]", "", text).upper()
    if not ORDER_NUMBER.match(candidate):
        raise InvalidOrderNumber(text)
    return candidate


class OrderStore:
    """Reads orders from the app database (blocking: call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def find(self, number: str) -> Order | None:
        """The order with this canonical number, or None."""
        with self._sessions() as session:
            return session.get(Order, number)


_PRODUCTS = [
    ("AuraSound X2 主动降噪耳机", "AuraSound X2 ANC earbuds", 89900),
    ("Nova 14 轻薄笔记本电脑", "Nova 14 thin laptop", 599900),
    ("Pulse Watch S3 智能手表", "Pulse Watch S3 smartwatch", 149900),
    ("CleanBot R7 扫地机器人", "CleanBot R7 robot vacuum", 259900),
    ("Volt 65W 氮化镓充电器", "Volt 65W GaN charger", 19900),
    ("Tab 11 平板电脑", "Tab 11 tablet", 229900),
    ("PowerCube 20000mAh 充电宝", "PowerCube 20000mAh power bank", 15900),
]
_CARRIERS = [("顺丰速运", "SF Express"), ("京东物流", "JD Logistics"), ("中通快递", "ZTO Express")]
_STATUS_CYCLE = [
    OrderStatus.shipped,
    OrderStatus.delivered,
    OrderStatus.paid,
    OrderStatus.pending_payment,
    OrderStatus.refunding,
    OrderStatus.cancelled,
    OrderStatus.shipped,
]


def demo_orders(today: date) -> list[Order]:
    """Twenty orders KF202611200001 ... KF202611200020 with every status, dated around `today`."""
    orders = []
    for index in range(1, 21):
        status = _STATUS_CYCLE[(index - 1) % len(_STATUS_CYCLE)]
        product_zh, product_en, cents = _PRODUCTS[(index - 1) % len(_PRODUCTS)]
        carrier_zh, carrier_en = _CARRIERS[(index - 1) % len(_CARRIERS)]
        created = datetime.combine(today - timedelta(days=3), datetime.min.time())
        shipped = status in (OrderStatus.shipped, OrderStatus.delivered)
        orders.append(
            Order(
                number=f"KF20261120{index:04d}",
                customer_phone=f"138{index:08d}",
                product_zh=product_zh,
                product_en=product_en,
                amount_cents=cents,
                status=status,
                carrier_zh=carrier_zh if shipped else None,
                carrier_en=carrier_en if shipped else None,
                tracking_number=f"SF{1400000000 + index * 7919}" if shipped else None,
                eta=today + timedelta(days=1 + index % 3)
                if status == OrderStatus.shipped
                else None,
                delivered_at=created + timedelta(days=2, hours=15)
                if status == OrderStatus.delivered
                else None,
                created_at=created,
            )
        )
    return orders


def seed_demo_orders(engine: Engine, today: date | None = None) -> int:
    """Inserts or refreshes the demo orders; returns how many there are."""
    orders = demo_orders(today or date.today())
    with Session(engine) as session, session.begin():
        for order in orders:
            session.merge(order)
    return len(orders)
