"""The REST channel with OneWindow's input checks; registered as `rest` in credentials.yml."""
from __future__ import annotations

from typing import Awaitable, Callable

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint

from onewindow.channels.input_guard import input_problem


class GuardedRestInput(RestInput):
    """Rasa's REST channel, but empty, over-long or unreadable messages get a clear reply."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        async def guarded(message: UserMessage) -> None:
            problem = input_problem(message.text)
            if problem:
                await message.output_channel.send_text_message(message.sender_id, problem)
                return
            await on_new_message(message)

        return super().blueprint(guarded)
