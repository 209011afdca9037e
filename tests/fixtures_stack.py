"""The real stack for the tests (harness.stack.Stack): one shared by the whole run, or one of a module's own.

`stack` is the stack a module's tests talk to: by default the run's shared stack (one instance, the
environment as it is), started on first use and stopped at the end of the run. A module that needs
other settings overrides `stack` with `running_stack(...)`:

    @pytest.fixture(scope="module")
    def stack(running_stack: RunningStack) -> Stack:
        return running_stack(instances=2)

Any option (`instances`, `env`, `fresh`) gives a stack of the module's own, stopped when the module ends.
After each module the shared stack is put back as it was: every server running, no Telegram bot left.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Iterator, Mapping, Optional, Protocol, Tuple

import pytest

from harness.stack import Stack


@dataclass(frozen=True)
class StackOptions:
    """How a stack differs from the shared one."""

    instances: int = 1
    env: FrozenSet[Tuple[str, str]] = frozenset()  # set in the environment while the servers start
    fresh: bool = False  # nothing from other modules in its databases (for tests that count every row)

    @property
    def shared(self) -> bool:
        return self == StackOptions()


class RunningStack(Protocol):
    """The `running_stack` fixture: the stack with these options (the shared one when none differ)."""

    def __call__(self, instances: int = 1, env: Optional[Mapping[str, str]] = None, fresh: bool = False) -> Stack: ...


@contextlib.contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in os.environ, and put back what was there before."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def start_stack(folder: Path, options: StackOptions) -> Stack:
    """Start a stack in `folder` with `options` (the servers copy the environment as they start); a stack that fails
    to start is stopped, so that no server of it outlives the run."""
    stack = Stack(folder, instances=options.instances)
    try:
        with environment(dict(options.env)):
            return stack.start()
    except BaseException:
        stack.stop()
        raise


def restore(stack: Stack) -> None:
    """Stop the Telegram bots a module started, and start again any server a module left halted."""
    for name, process in list(stack.processes.items()):
        if name.startswith("bot "):
            if process.poll() is None:
                stack.halt(name)
            del stack.processes[name], stack.commands[name]
    for name, process in list(stack.processes.items()):
        if process.poll() is not None:
            stack.resume(name)


class SharedStack:
    """The run's shared stack, started on first use."""

    def __init__(self, folder: pytest.TempPathFactory) -> None:
        self._folders = folder
        self._stack: Optional[Stack] = None

    def get(self) -> Stack:
        if self._stack is None:
            self._stack = start_stack(self._folders.mktemp("shared-stack"), StackOptions())
        return self._stack

    def restore(self) -> None:
        if self._stack is not None:
            restore(self._stack)

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.stop()


@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedStack]:
    shared = SharedStack(tmp_path_factory)
    yield shared
    shared.stop()


@pytest.fixture(scope="module")
def running_stack(
    shared_stack: SharedStack, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    """The shared stack, or (with options) one of the module's own, started once per module and options."""
    own: Dict[StackOptions, Stack] = {}

    def get(instances: int = 1, env: Optional[Mapping[str, str]] = None, fresh: bool = False) -> Stack:
        options = StackOptions(instances, frozenset((env or {}).items()), fresh)
        if options.shared:
            return shared_stack.get()
        if options not in own:
            own[options] = start_stack(tmp_path_factory.mktemp(f"{request.path.stem}-stack"), options)
        return own[options]

    yield get
    for stack in own.values():
        stack.stop()
    shared_stack.restore()


@pytest.fixture(scope="module")
def stack(running_stack: RunningStack) -> Stack:
    """The run's shared stack; a module overrides this fixture to run on a stack of its own."""
    return running_stack()
