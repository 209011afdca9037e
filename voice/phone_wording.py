"""Bot responses rendered for the ear: options read with their keys and paged, short lists, codes and numbers read slowly.

Keys on the hotline: 1 to 8 choose an option of the page being read; MORE_KEY (9) hears the rest
of a long list or the next page of options (after the last page, the first again); REPEAT_KEY (*)
hears the last answer again; SLOWER_KEY (#) hears it again more slowly (and ends a keyed-in
number); PERSON_KEY (0) asks for a person. A choice is read "For 2 pm, press 3" (or "Press 3 for
the number ending in 1 2 3 4" when the title ends in a digit), so a key is never read right
beside another number. "Say" is only offered when the hotline can hear speech.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import date, time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from onewindow.text.dates import MONTH_NAMES, NUMBER_WORDS, WEEKDAY_NAMES, parse_time, spoken_date, spoken_time
from voice.normalise import normalise_caller_text

PAGE_SIZE = 8
PERSON_KEY = "0"
MORE_KEY = "9"
REPEAT_KEY = "*"
SLOWER_KEY = "#"
PERSON_PAYLOAD = "/request_human"
YES_WORDS = ("yes", "yeah", "yep", "yup", "correct", "right", "sure")
NO_WORDS = ("no", "nope", "nah")
NEGATIONS = ("not", "don't", "dont", "never", "isn't", "wasn't", "can't", "cannot")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
# while the assistant asks for one of these, keys are digits ended by SLOWER_KEY (#) or a pause
NUMBER_QUESTION = re.compile(r"\b(?:number|phone|reference|digits)\b", re.IGNORECASE)
# a title starting with one of these is an action: "To book an appointment, press 1"
VERBS = frozenset(
    "book check move change cancel talk speak report find ask see hear apply renew register pay get give use "
    "leave keep go call start choose show tell".split()
)
KEY_THEM_IN = re.compile(r"\bkey (?:it|them|the \w+) in\b", re.IGNORECASE)
KEYED_IN = re.compile(r"\b(?:key|press|hash)\b", re.IGNORECASE)
# words that never tell options apart
COMMON_WORDS = frozenset(
    "a an the to of or and for in on at it its it's my me i you your what how can do is be please here "
    "this that with one by from are as if so have has need want get about there more repeat slower".split()
)
UNTELLING = COMMON_WORDS | set(YES_WORDS) | set(NO_WORDS)  # never a short form: yes and no have their own
# words around a number ("the second one", "press 2") or around all that was said
FILLER_WORDS = frozenset(
    "the number option press choice please i want i'd like take pick choose select say it is it's "
    "that um uh er okay ok and thanks thank you button key".split()
)

MARKUP = (
    (re.compile(r"<[^>]+>"), " "),  # HTML tags
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [label](link)
    (re.compile(r"(?m)^[ \t]*(?:#+|[-•>])[ \t]+"), ""),  # headings, bullets, quotes
    (re.compile(r"\*\*|__|[*`~]"), ""),  # bold, code, strike-through marks
    (re.compile(r"(?<!\w)_(\S(?:.*?\S)?)_(?!\w)"), r"\1"),  # _italic_
)
LINE_END = re.compile(r"(?<=[^\s.,:;!?])[ \t]*\n")
WORD = re.compile(r"[a-z0-9]+(?:[:'-][a-z0-9]+)*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
LIST_MARKER = re.compile(r"(?:^|(?<=[\s:]))(\d{1,2})\. (?=\S)")
CLOSING = re.compile(r"\b(?:you|your|please)\b|\?|^(?:There (?:is|are)|That is|That's)\b", re.IGNORECASE)
UNSPOKEN_COUNT = re.compile(r"There (?:is|are) \d+ more\.\s*")
ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ]([01]\d|2[0-3]):([0-5]\d)(?::\d{2})?)?\b")
CLOCK = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b(?!\s*(?:am|pm|a\.m\.|p\.m\.))", re.IGNORECASE)
SPELLED_CODE = re.compile(r"\b([A-Z](?: [A-Z]){1,3}) (\d(?: \d){5}(?:(?: \d){4})?)\b")
REFERENCE = re.compile(r"\b[A-Z]{2,4}-\d{4,8}(?:-\d{4,6})?\b")
PHONE = re.compile(r"(?<![\w+-])\+?\d{1,4}(?:[ -]?\d{2,4}){1,5}(?![\w-])")


@dataclass(frozen=True)
class Option:
    """One choice: on page `page` press `key`, or say one of `keywords`, to send `payload`."""

    key: str
    title: str
    payload: str
    keywords: Tuple[str, ...]
    page: int = 0


@dataclass(frozen=True)
class SpokenTurn:
    """What to say now, every option it offers, the rest of a long list for "more", and the choices page by page.

    `text` ends with the first page's choices (`pages[0]`); MORE_KEY reads `more` first (when a
    list was cut), then `pages[1]`, `pages[2]`, ... and `pages[0]` again. `asks_number`: the
    assistant asked for a number, so digit keys are collected until # or a pause.
    """

    text: str
    options: Tuple[Option, ...]
    more: Optional[str] = None
    pages: Tuple[str, ...] = ()
    asks_number: bool = False

    def on_page(self, page: int) -> Tuple[Option, ...]:
        """The options keyed on this page."""
        return tuple(o for o in self.options if o.page == page)


@dataclass(frozen=True)
class Listing:
    """A numbered list inside a text: what comes before it, its items ("1. ..."), what follows."""

    before: str
    items: List[str]
    after: str


# --- reading numbers and codes -----------------------------------------------------------


def _groups(digits: str) -> List[str]:
    """Digits in groups of three; a last lone digit joins the group before it."""
    groups = [digits[start : start + 3] for start in range(0, len(digits), 3)]
    if len(groups) > 1 and len(groups[-1]) == 1:
        groups[-2:] = [groups[-2] + groups[-1]]
    return groups


def spell_code(code: str) -> str:
    """ "BK-482913" -> "B K, 4 8 2, 9 1 3": letters one by one, digits in groups of three."""
    letters = "".join(ch for ch in code if ch.isalpha()).upper()
    digits = "".join(ch for ch in code if ch.isdigit())
    parts = ([" ".join(letters)] if letters else []) + [" ".join(group) for group in _groups(digits)]
    return ", ".join(parts)


def spell_phone(number: str) -> str:
    """ "0800 100 200" -> "0 8 0 0, 1 0 0, 2 0 0": the written groups, or 4-3-3 / threes when unwritten."""
    written = re.findall(r"\d+", number)
    digits = "".join(written)
    if len(written) > 1 and all(len(group) <= 4 for group in written):
        groups = written
    elif len(digits) == 10:
        groups = [digits[:4], digits[4:7], digits[7:]]
    else:
        groups = _groups(digits)
    plus = "plus " if number.strip().startswith("+") else ""
    return plus + ", ".join(" ".join(group) for group in groups)


def _spoken_iso(match: re.Match) -> str:
    """ "2026-11-24" -> "Tuesday 24 November" (with " at 2:30 pm" for "2026-11-24T14:30"); impossible dates stay."""
    try:
        day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return match.group(0)
    if match.group(4) is None:
        return spoken_date(day)
    return f"{spoken_date(day)} at {spoken_time(time(int(match.group(4)), int(match.group(5))))}"


def _spoken_phone(match: re.Match) -> str:
    """A number that looks like a phone number (0 or + and 8 to 15 digits) spelled; other numbers stay."""
    written = match.group(0)
    digits = re.sub(r"\D", "", written)
    if written[0] in "+0" and 8 <= len(digits) <= 15:
        return spell_phone(written)
    return written


def plain(text: str) -> str:
    """Markup, HTML and symbols removed, lines ended with a pause, spaces collapsed."""
    text = "".join(ch for ch in html.unescape(text) if unicodedata.category(ch) not in ("So", "Cs", "Co", "Cn"))
    for pattern, replacement in MARKUP:
        text = pattern.sub(replacement, text)
    return " ".join(LINE_END.sub(". ", text.strip()).split())


def speakable(text: str) -> str:
    """Plain text with dates and times in words, and reference codes and phone numbers spelled slowly."""
    text = ISO_DATE.sub(_spoken_iso, text)
    text = CLOCK.sub(lambda m: spoken_time(time(int(m.group(1)), int(m.group(2)))), text)
    text = SPELLED_CODE.sub(lambda m: spell_code(m.group(1) + m.group(2)), text)
    text = REFERENCE.sub(lambda m: spell_code(m.group(0)), text)
    return PHONE.sub(_spoken_phone, text)


# --- long numbered lists -----------------------------------------------------------------


def find_listing(text: str) -> Optional[Listing]:
    """The first numbered list ("1. ... 2. ...") of at least two items in a plain text."""
    markers: List[re.Match[str]] = []
    for match in LIST_MARKER.finditer(text):
        if int(match.group(1)) == len(markers) + 1:
            markers.append(match)
    if len(markers) < 2:
        return None
    bounds = [m.start() for m in markers] + [len(text)]
    items = [text[start:end].strip() for start, end in zip(bounds, bounds[1:])]
    lengths = Counter(len(_sentences(item)) for item in items[:-1])
    usual = min(lengths, key=lambda length: (-lengths[length], length))
    last = _sentences(items[-1])  # as long as most items, and on until a sentence speaks to the reader
    end = next((n for n in range(usual, len(last)) if CLOSING.search(last[n])), len(last))
    items[-1] = f"{markers[-1].group(0)}{' '.join(last[:end])}"
    return Listing(text[: markers[0].start()].strip(), items, " ".join(last[end:]))


def _sentences(item: str) -> List[str]:
    """The sentences of a list item, without its "3. " marker."""
    return SENTENCE_END.split(LIST_MARKER.sub("", item, count=1).strip())


def _more_notice(count: int, speech: bool = True) -> str:
    """What to say where a long list is cut."""
    how = f"say more or press {MORE_KEY}" if speech else f"press {MORE_KEY}"
    if count == 1:
        return f"There is 1 more. To hear it, {how}."
    return f"There are {count} more. To hear them, {how}."


def shorten(listing: Listing, max_listed: int, speech: bool = True) -> Tuple[str, Optional[str]]:
    """(the text with its list cut after max_listed items, the rest of the list) — no rest when short."""
    whole = " ".join(part for part in (listing.before, *listing.items, listing.after) if part)
    if len(listing.items) <= max_listed:
        return whole, None
    rest = listing.items[max_listed:]
    unspoken = UNSPOKEN_COUNT.match(listing.after)  # "There are 2 more." belongs with the rest
    after = listing.after[unspoken.end() :] if unspoken else listing.after
    more = " ".join(rest + ([unspoken.group(0).strip()] if unspoken else []))
    kept = (listing.before, *listing.items[:max_listed], _more_notice(len(rest), speech), after)
    return " ".join(part for part in kept if part), more


# --- buttons as options ------------------------------------------------------------------


def words_of(text: str) -> List[str]:
    """Lowercase words, keeping "10:15", "bk-123456" and "survivor's" whole."""
    return WORD.findall(text.lower())


def _answer_words(words: List[str]) -> Tuple[str, ...]:
    """The usual ways of saying a title's leading "yes" or "no"."""
    if words[:1] == ["yes"]:
        return YES_WORDS
    if words[:1] == ["no"]:
        return NO_WORDS
    return ()


def make_options(buttons: Sequence[Dict[str, Any]]) -> Tuple[Option, ...]:
    """Every button as an option, keyed 1..PAGE_SIZE page by page, each with its title and the title's words no other option has."""
    shown = [b for b in buttons if b.get("title") and b.get("payload")]
    titles = [words_of(str(b["title"])) for b in shown]
    options = []
    for index, (button, words) in enumerate(zip(shown, titles)):
        others = {word for other, title in enumerate(titles) if other != index for word in title}
        unique = [w for w in words if w not in others and w not in UNTELLING and not (len(w) == 1 and w.isdigit())]
        keywords = tuple(k for k in dict.fromkeys([" ".join(words), *unique, *_answer_words(words)]) if k)
        page, position = divmod(index, PAGE_SIZE)
        options.append(Option(str(position + 1), str(button["title"]), str(button["payload"]), keywords, page))
    return tuple(options)


def _said_title(title: str) -> str:
    """A title as said in a sentence: "Find an office" -> "find an office"; names keep their capitals."""
    words = plain(title).split() or [""]
    capitalised = [w for w in words if w[:1].isalpha()]
    proper = len(capitalised) > 1 and all(w[0].isupper() for w in capitalised)
    first = words[0].strip(",.")
    keep = proper or first.lower() in ("i", *WEEKDAY_NAMES, *MONTH_NAMES) or first.isupper()
    text = " ".join(words)
    return text if keep else text[:1].lower() + text[1:]


def _answer(option: Option) -> Optional[str]:
    """ "yes" or "no" for options that answer a question that way ("Yes, cancel it"), else None."""
    return next((word for word in ("yes", "no") if word in option.keywords), None)


def _aligned(options: Sequence[Option], listing: Optional[Listing]) -> bool:
    """Whether option n is item n of the list (so the items are read as the choices)."""
    if listing is None or len(listing.items) != len(options):
        return False
    return all(label.startswith(o.title.split(",")[0].lower()) for label, o in zip(_labels(listing), options))


def _labels(listing: Listing) -> List[str]:
    """A list's items without their "3. " markers, lowercase."""
    return [re.sub(r"^\d{1,2}\. ", "", item).lower() for item in listing.items]


def press(option: Option, item: str = "") -> str:
    """ "For 2 pm, press 3." — or "Press 1 for ..., ending in 1 2 3 4." when the words end in a digit; a list item's
    details are read first: "Central Service Centre, 1 Market Square. For Central Service Centre, press 1."."""
    title = speakable(plain(option.title)).rstrip(" .")
    details = re.sub(r"^\d{1,2}\. ", "", item).strip()
    lead = f"{details.rstrip('.')}. " if details and details.rstrip(". ").lower() != plain(option.title).lower() else ""
    said = _said_title(title)
    if said[-1:].isdigit():
        return f"{lead}Press {option.key} for {said}."
    if said.split(" ", 1)[0] in VERBS:  # "Talk to a person" -> "To talk to a person, press 7."
        return f"{lead}To {said}, press {option.key}."
    return f"{lead}For {said}, press {option.key}."


def page_sentence(
    page: Sequence[Option],
    page_number: int,
    pages: int,
    speech: bool = True,
    items: Sequence[str] = (),
    asks_for_person: bool = False,
    extra: str = "",
) -> str:
    """The choices of one page, aloud: each with its key, then `extra`, how to hear more, and the person key."""
    answers = [_answer(o) for o in page]
    if pages == 1 and sorted(map(str, answers)) == ["no", "yes"]:
        if speech:
            parts = [f"Say {answers[0]} or press 1, say {answers[1]} or press 2."]
        else:
            parts = [f"For {answers[0]}, press 1. For {answers[1]}, press 2."]
    else:
        parts = [press(option, item) for option, item in zip(page, [*items, *[""] * len(page)])]
    if extra:
        parts.append(extra)
    if pages > 1:
        last = page_number == pages - 1
        parts.append(f"To hear the first choices again, press {MORE_KEY}." if last else f"For more choices, press {MORE_KEY}.")
    if not asks_for_person:
        parts.append(f"For a person, press {PERSON_KEY}.")
    return " ".join(parts)


def options_sentence(options: Sequence[Option], listing: Optional[Listing] = None, speech: bool = True) -> str:
    """How to choose on the first page, aloud ("For passport renewal, press 1. ... For a person, press 0.")."""
    return choice_pages(options, listing, speech)[0] if options else ""


def choice_pages(
    options: Sequence[Option], listing: Optional[Listing] = None, speech: bool = True, extra: str = ""
) -> Tuple[str, ...]:
    """The choices sentence of every page (`extra` after the first page's choices); a list aligned with the
    options is read item by item as its choices."""
    if not options:
        return ()
    count = max(o.page for o in options) + 1
    items = listing.items if listing is not None and _aligned(options, listing) else []
    person = any(o.payload.startswith(PERSON_PAYLOAD) for o in options)
    return tuple(
        page_sentence(
            [o for o in options if o.page == number],
            number,
            count,
            speech,
            items[number * PAGE_SIZE : (number + 1) * PAGE_SIZE],
            person,
            extra if number == 0 else "",
        )
        for number in range(count)
    )


# --- whole turns -------------------------------------------------------------------------


def checklist_text(checklist: Dict[str, Any]) -> str:
    """A document checklist read as text: "Please bring: 1. ... 2. ..."."""
    items = [str(item).rstrip(". ") for item in checklist.get("items") or []]
    if not items:
        return ""
    return "Please bring: " + " ".join(f"{n}. {item}." for n, item in enumerate(items, start=1))


def _texts(responses: Sequence[Dict[str, Any]]) -> List[str]:
    """The plain texts of a turn, with checklists whose items the texts do not already say."""
    texts = [plain(str(r["text"])) for r in responses if r.get("text")]
    said = " ".join(texts).lower()
    for response in responses:
        checklist = (response.get("custom") or {}).get("checklist")
        if not isinstance(checklist, dict):
            continue
        items = checklist.get("items") or []
        if items and not all(str(item).lower().rstrip(". ") in said for item in items):
            texts.append(checklist_text(checklist))
    return [text for text in texts if text]


HINTS = "To hear this again, press star. To hear it more slowly, press hash."


def speak_responses(responses: List[Dict[str, Any]], max_listed: int = 3, speech: bool = True, hints: bool = False) -> SpokenTurn:
    """One turn for the ear from Rasa's REST responses: texts, a long list cut (or read as the choices when it is
    them), buttons as options paged by PAGE_SIZE; `speech` False offers no speaking; `hints` adds the star and hash keys."""
    options = make_options([b for r in responses for b in r.get("buttons") or []])
    parts: List[str] = []
    more: Optional[str] = None
    first_listing: Optional[Listing] = None
    after = ""  # what follows a list read as the choices: said after the first page's choices
    for text in _texts(responses):
        listing = find_listing(text)
        if listing and first_listing is None:
            first_listing = listing
            if _aligned(options, listing):  # the items are read with their keys, page by page
                text, after = listing.before, listing.after
            else:
                text, more = shorten(listing, max_listed, speech)
        parts.append(text)
    asked = " ".join(parts)
    questions = [sentence for sentence in SENTENCE_END.split(asked) if sentence.rstrip().endswith("?")]
    asks_number = any(NUMBER_QUESTION.search(question) for question in questions) or bool(KEY_THEM_IN.search(asked))
    keyed_in = asks_number and not KEYED_IN.search(asked)
    if keyed_in and not options:
        parts.append("Key in the number, then press hash.")
    extra = " ".join(part for part in (after, "To give another number, key it in, then press hash." if keyed_in else "") if part)
    pages = tuple(speakable(page) for page in choice_pages(options, first_listing, speech, extra))
    if pages:
        parts.append(pages[0])
    if hints:
        parts.append(HINTS)
    spoken = speakable(" ".join(part for part in parts if part))
    return SpokenTurn(spoken, options, speakable(more) if more else None, pages, asks_number)


# --- what the caller chose ---------------------------------------------------------------


def _position(words: List[str]) -> Optional[str]:
    """ "the second one", "number two", "press 2", "option two" -> "2"; "the last one" -> "last"."""
    core = [w for w in words if w not in FILLER_WORDS]
    if len(core) == 2 and core[1] == "one" and core[0] != "one":
        core = core[:1]
    if len(core) != 1:
        return None
    word = core[0]
    numbers = {name: str(value) for name, value in NUMBER_WORDS.items() if value <= PAGE_SIZE}
    ordinals = {name: str(n) for n, name in enumerate(ORDINALS, start=1)}
    if re.fullmatch(r"[1-9](?:st|nd|rd|th)?", word):
        return word[0]
    return numbers.get(word) or ordinals.get(word) or ("last" if word == "last" else None)


def _by_answer(words: List[str], options: Sequence[Option]) -> Optional[Option]:
    """A yes or no at the start of what was said picks the option that answers the same way."""
    lead = next((w for w in words if w not in ("oh", "um", "uh", "er", "well")), "")
    answer = "yes" if lead in YES_WORDS else "no" if lead in NO_WORDS else None
    matching = [o for o in options if answer and _answer(o) == answer]
    return matching[0] if len(matching) == 1 else None


def _by_words(words: List[str], options: Sequence[Option]) -> Optional[Option]:
    """The option whose longest keyword (or title containing all that was said) matches best; None on a tie."""
    padded = f" {' '.join(words)} "
    core = " ".join(w for w in words if w not in FILLER_WORDS) if set(words) - COMMON_WORDS else ""
    scores = []
    for option in options:
        found = [len(k.split()) for k in option.keywords if f" {k} " in padded]
        if core and f" {core} " in f" {' '.join(words_of(option.title))} ":
            found.append(len(core.split()))
        scores.append(max(found, default=0))
    best = max(scores, default=0)
    if best == 0 or scores.count(best) > 1:
        return None
    return options[scores.index(best)]


def _by_number(said: str, options: Sequence[Option]) -> Optional[Option]:
    """ "10:00" or "ten" picks the option titled "10 am"; "two" picks "Window 2": numbers in titles before key positions."""
    if not any(ch.isdigit() for o in options for ch in o.title):
        return None
    wanted = parse_time(said).value
    matching = [o for o in options if wanted is not None and parse_time(o.title).value == wanted]
    if not matching:  # only a number was said
        core = [w for w in words_of(normalise_caller_text(said)) if w not in FILLER_WORDS]
        matching = [o for o in options if len(core) == 1 and core[0].isdigit() and core[0] in words_of(o.title)]
    return matching[0] if len(matching) == 1 else None


def by_key(digit: str, options: Sequence[Option], page: int = 0) -> Optional[Option]:
    """The option a key chooses on the page being read."""
    return next((o for o in options if o.page == page and o.key == digit), None)


def choose(said: str, options: Sequence[Option], page: int = 0) -> Optional[Option]:
    """The option a caller said: by a number in the titles, its position on this page, yes or no, or words; None when unclear."""
    return _choose(said, options, page) or _choose(normalise_caller_text(said), options, page)


def _choose(said: str, options: Sequence[Option], page: int) -> Optional[Option]:
    """choose() on the words as given."""
    words = words_of(said)
    if not words or not options:
        return None
    numbered = _by_number(said, options)
    if numbered is not None:
        return numbered
    shown = [o for o in options if o.page == page]
    if said.strip() in {o.key for o in shown}:
        return by_key(said.strip(), options, page)
    position = _position(words)
    if position is not None:
        return shown[-1] if position == "last" and shown else by_key(position, options, page)
    answer = _by_answer(words, options)
    if answer is not None:
        return answer
    if any(w in NEGATIONS or w.endswith("n't") for w in words):
        return None
    return _by_words(words, options)
