"""The dashboard's words in the ten languages of the region; codes keep their own labels
(schemas/codes/<lang>.yaml, :func:`hub.codes.labels_for`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from hub.codes import CodeLabels, labels_for

LOCALES = Path(__file__).parent / "locales"
#: The languages offered, in the order of the switch (code -> the language's name for itself).
LANGUAGES = ("en", "th", "my", "km", "lo", "vi", "ms", "id", "fil", "zh")
DEFAULT_LANGUAGE = "en"
#: BCP 47 tags for the page's ``lang`` attribute (Filipino is ``fil``, Chinese written simplified).
HTML_LANG = {"zh": "zh-Hans"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def catalog(language: str) -> Mapping[str, str]:
    path = LOCALES / f"{language}.yaml"
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(key): str(value) for key, value in loaded.items()}


def negotiate(accept_language: str | None) -> str:
    """The first language of an Accept-Language header that the dashboard speaks."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        for candidate in (tag, tag.split("-")[0]):
            if candidate in LANGUAGES:
                return candidate
            if candidate == "tl":  # Tagalog: Filipino is written the same
                return "fil"
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Words:
    """``t(key, name=value)``: the dashboard's words in one language, English where one is missing."""

    language: str

    def __call__(self, key: str, **values: object) -> str:
        text = catalog(self.language).get(key) or catalog(DEFAULT_LANGUAGE).get(key) or key
        return _PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), match.group(0))), text)

    @property
    def codes(self) -> CodeLabels:
        return _code_labels(self.language)

    def label(self, code_list: str, value: str | None) -> str:
        """A code's label (``label("EventType", "ReferralRequested")``); the code itself if unknown."""
        if value is None:
            return ""
        return self.codes.labels.get(code_list, {}).get(value, value)

    @property
    def html_lang(self) -> str:
        return HTML_LANG.get(self.language, self.language)


@cache
def _code_labels(language: str) -> CodeLabels:
    return labels_for(language)


def language_names() -> list[tuple[str, str]]:
    return [(code, catalog(code).get("language_name") or code) for code in LANGUAGES]
