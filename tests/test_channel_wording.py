"""Every prompt is worded for the citizen's channel (onewindow/text/channel_wording.py): never "type" on a call,
never "say" without speech, never "press" (the gateway adds keys from the buttons).

The prompts are not listed by hand: every Prompt registers itself, the domain's responses are read
with Rasa's own variation filter, and the sources are scanned for plain strings that would reach
every channel alike.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rasa.core.nlg.response import ResponseVariationFilter

import actions
from onewindow import settings
from onewindow.text.channel_wording import CHAT, KEYPAD, MODES, PROMPTS, VOICE, Abilities, Prompt, abilities_for
from tests.action_harness import load_domain

CALL_WORDS = r"\b(type|typed|typing|tap|click|buttons?)\b|\bcall (the )?(city )?hotline\b"
SPEECH_WORDS = r"\b(say|said|saying|speak|speaking|tell me)\b"
KEY_WORDS = r"\bpress(ed|ing)?\b"
FORBIDDEN: Dict[str, str] = {
    CHAT: f"{SPEECH_WORDS}|{KEY_WORDS}",
    VOICE: f"{CALL_WORDS}|{KEY_WORDS}",
    KEYPAD: f"{CALL_WORDS}|{SPEECH_WORDS}|{KEY_WORDS}",
}
ANY_MODE = "|".join(FORBIDDEN.values())
WORDED_SOURCES = [
    *(settings.PROJECT_ROOT / "actions").glob("*.py"),
    *(
        settings.PROJECT_ROOT / "onewindow" / name
        for name in ("text/wording.py", "backend/staff_desk.py", "backend/staff_hours.py")
    ),
    settings.PROJECT_ROOT / "onewindow" / "channels" / "input_guard.py",
]


def every_prompt() -> List[Prompt]:
    """The prompts of every module that words answers (importing a module registers its prompts)."""
    for module in pkgutil.iter_modules(actions.__path__):
        importlib.import_module(f"actions.{module.name}")
    importlib.import_module("onewindow.channels.input_guard")
    importlib.import_module("onewindow.text.wording")
    return list(PROMPTS)


def forbidden_in(text: str, mode: str) -> List[str]:
    return [m.group(0) for m in re.finditer(FORBIDDEN[mode], text, re.IGNORECASE)]


@pytest.mark.parametrize("mode", MODES)
def test_every_prompt_is_worded_for_each_mode(mode: str) -> None:
    prompts = every_prompt()
    assert len(prompts) > 30, "the prompts register themselves when their modules are imported"
    wrong = {p.render_blank(mode): forbidden_in(p.render_blank(mode), mode) for p in prompts}
    assert {text: words for text, words in wrong.items() if words} == {}


def domain_variations(mode: str) -> Iterator[Tuple[str, str]]:
    """(response, text or button title) of every variation Rasa would choose for an output channel named `mode`."""
    responses = load_domain()["responses"]
    chooser = ResponseVariationFilter(responses)
    for name in responses:
        for variation in chooser.responses_for_utter_action(name, mode, {}):
            yield name, variation.get("text") or ""
            for button in variation.get("buttons") or []:
                yield name, button["title"]


@pytest.mark.parametrize("mode", MODES)
def test_every_domain_response_is_worded_for_each_mode(mode: str) -> None:
    found = list(domain_variations(mode))
    assert {name for name, _ in found} == set(load_domain()["responses"]), "every response has a variation for every mode"
    assert [(name, text, forbidden_in(text, mode)) for name, text in found if forbidden_in(text, mode)] == []


def test_the_keypad_help_offers_the_main_menu() -> None:
    from actions.menu import main_menu_buttons

    (keypad,) = ResponseVariationFilter(load_domain()["responses"]).responses_for_utter_action("utter_help", KEYPAD, {})
    assert keypad["buttons"] == main_menu_buttons()


def plain_strings(path: Path) -> Iterator[Tuple[int, str]]:
    """The string literals of a source file outside Prompt(...) calls and docstrings: words every channel gets alike."""
    tree = ast.parse(path.read_text())
    inside_prompts = {
        id(node)
        for call in ast.walk(tree)
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Prompt"
        for node in ast.walk(call)
    }
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        words = " " in node.value.strip()  # not a key or a name
        if words and id(node) not in inside_prompts | docstrings:
            yield node.lineno, node.value


@pytest.mark.parametrize("path", WORDED_SOURCES, ids=lambda p: p.name)
def test_no_plain_string_carries_a_channel_word(path: Path) -> None:
    """A sentence that depends on the channel is a Prompt; a plain string must fit every channel."""
    assert [(line, text) for line, text in plain_strings(path) if re.search(ANY_MODE, text, re.IGNORECASE)] == []


@given(
    sender=st.one_of(st.text(max_size=20), st.sampled_from(["phone:0412345678", "telegram:42", "kiosk:abc", "rest-user"])),
    metadata=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["speech", "input", "channel"]), st.one_of(st.booleans(), st.text(max_size=5), st.none()), max_size=3
        ),
    ),
)
def test_abilities_follow_the_sender_and_the_speech_flag(sender: str, metadata: Dict) -> None:
    abilities = abilities_for(sender, metadata)
    assert isinstance(abilities, Abilities) and abilities.mode in MODES
    if sender.startswith("phone:"):
        assert abilities.keypad and not abilities.typing
        assert abilities.mode == (VOICE if (metadata or {}).get("speech") is True else KEYPAD)
    elif sender.startswith("kiosk:"):
        assert abilities.mode == VOICE
    else:
        assert abilities.mode == CHAT and abilities.buttons, "the sender decides the channel, never the metadata"


def test_a_prompt_renders_its_fields_and_its_modes_own_part() -> None:
    prompt = Prompt("Which {thing}?", chat="Type it.", voice="Say it.")
    PROMPTS.remove(prompt)  # not one of the assistant's prompts
    assert prompt.render(abilities_for("telegram:1", {}), thing="day") == "Which day? Type it."
    assert prompt.render(abilities_for("phone:0412345678", {"speech": True}), thing="day") == "Which day? Say it."
    assert prompt.render(abilities_for("phone:0412345678", {"speech": False}), thing="day") == "Which day?"
