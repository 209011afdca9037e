"""A setting: one environment variable with its type, default, description and the processes that read it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict, Generic, List, Mapping, Optional, Tuple, TypeVar, Union

from onewindow.settings.kinds import Kind

T = TypeVar("T")
Env = Mapping[str, str]

READERS: Dict[str, str] = {
    "rasa": "the Rasa servers (onewindow.rasa_plugins.server)",
    "actions": "the action server",
    "proxy": "HAProxy in front of the servers (its haproxy.cfg rendered by onewindow/infra/haproxy.py)",
    "console": "the staff console (python -m console)",
    "bot": "the Telegram bot (python -m bot)",
    "voice": "the hotline gateway and the kiosk (python -m voice)",
    "launcher": "`make run` and `make shell` (python -m onewindow.launcher)",
    "harness": "the test and benchmark harness (harness/stack.py)",
    "cli": "the command lines: python -m onewindow (seed, export-nlu), python -m onewindow.infra.api_auth",
}


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable. Unset or blank, it takes `default` (a text read like the variable's own, or made
    from the environment when read, then shown in the docs as `shown_default`)."""

    name: str
    kind: Kind[T]
    default: Union[str, Callable[[Env], str]]
    description: str
    readers: Tuple[str, ...]
    shown_default: str = ""

    def read(self, env: Optional[Env] = None) -> T:
        """The value in `env` (os.environ when None, read now), else the default; InvalidSetting on a bad value."""
        env = os.environ if env is None else env
        text = env.get(self.name, "").strip()
        if not text:
            text = self.default if isinstance(self.default, str) else self.default(env)
        return self.kind.parse(self.name, text)

    def given(self, env: Optional[Env] = None) -> bool:
        """Whether `env` (os.environ when None) sets this variable to something other than blanks."""
        return bool((os.environ if env is None else env).get(self.name, "").strip())

    @property
    def default_value(self) -> T:
        """The value when nothing is set."""
        return self.read({})

    @property
    def documented_default(self) -> str:
        return self.shown_default or (self.default if isinstance(self.default, str) else "")


REGISTRY: List[Setting] = []  # every setting, in the order declared (the order of the docs' table)


def declare(
    name: str,
    kind: Kind[T],
    default: Union[str, Callable[[Env], str]],
    description: str,
    readers: Tuple[str, ...],
    shown_default: str = "",
) -> Setting[T]:
    """A new setting, added to REGISTRY."""
    unknown = set(readers) - set(READERS)
    if unknown or (not isinstance(default, str) and not shown_default):
        raise ValueError(f"{name}: unknown readers {sorted(unknown)} or a computed default without shown_default")
    setting = Setting(name, kind, default, description, readers, shown_default)
    REGISTRY.append(setting)
    return setting
