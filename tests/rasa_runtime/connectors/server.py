"""A real Sanic server serving one Kefu channel, registered the way Rasa registers channels."""

from __future__ import annotations

import socket
import uuid
from types import SimpleNamespace
from typing import Any

from rasa.core.channels.channel import InputChannel, UserMessage, register
from sanic import Sanic


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ChannelServer:
    """`received` holds what reached "Rasa"; each message is echoed to its sender."""

    def __init__(self, channel: InputChannel) -> None:
        self.channel = channel
        self.received: list[UserMessage] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def handle_message(self, message: UserMessage) -> None:
        self.received.append(message)
        assert message.output_channel is not None
        await message.output_channel.send_text_message(message.sender_id, f"echo: {message.text}")

    async def __aenter__(self) -> ChannelServer:
        app = Sanic(f"kefu_channel_{uuid.uuid4().hex}")
        app.ctx.agent = SimpleNamespace(handle_message=self.handle_message)
        register([self.channel], app, route="/webhooks/")
        self.server: Any = await app.create_server(
            host="127.0.0.1", port=self.port, return_asyncio_server=True, access_log=False
        )
        await self.server.startup()
        await self.server.before_start()
        await self.server.after_start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.server.before_stop()
        await self.server.close()
        await self.server.after_stop()
