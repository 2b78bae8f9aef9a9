"""The dashboard's UI catalogs: every language has the English keys and placeholders, in its own words."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest
import yaml

LOCALES = Path(__file__).resolve().parent.parent / "connectors" / "dashboard" / "locales"
#: The languages besides English, with the name each gives itself.
LANGUAGE_NAMES = {
    "th": "ไทย",
    "my": "မြန်မာ",
    "km": "ខ្មែរ",
    "lo": "ລາວ",
    "vi": "Tiếng Việt",
    "ms": "Bahasa Melayu",
    "id": "Bahasa Indonesia",
    "fil": "Filipino",
    "zh": "中文",
}
LANGUAGES = list(LANGUAGE_NAMES)
#: Code point ranges of the languages not written in Latin letters.
SCRIPTS = {
    "th": (0x0E00, 0x0E7F),
    "my": (0x1000, 0x109F),
    "km": (0x1780, 0x17FF),
    "lo": (0x0E80, 0x0EFF),
    "zh": (0x4E00, 0x9FFF),
}
#: Long sentences no language could leave in English (short labels may be legitimate loanwords).
MUST_BE_TRANSLATED = [
    "audit_warning",
    "suppressed_explained",
    "credential_help",
    "regional_intro",
    "alerts_intro",
    "dead_letters_intro",
    "operator_intro",
]
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@cache
def _catalog(language: str) -> dict[str, object]:
    loaded = yaml.safe_load((LOCALES / f"{language}.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{language}.yaml is not a mapping"
    return loaded


def _placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def test_the_catalogs_are_the_ones_shipped() -> None:
    assert sorted(path.stem for path in LOCALES.glob("*.yaml")) == sorted(["en", *LANGUAGES])


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_catalog_has_exactly_the_english_keys(language: str) -> None:
    english, own = _catalog("en"), _catalog(language)
    assert not set(english) - set(own), f"{language}: missing {sorted(set(english) - set(own))}"
    assert not set(own) - set(english), f"{language}: unknown {sorted(set(own) - set(english))}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_value_is_a_non_empty_string(language: str) -> None:
    for key, value in _catalog(language).items():
        assert isinstance(value, str), f"{language}: {key} is {type(value).__name__}, not a string"
        assert value.strip(), f"{language}: {key} is empty"


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_are_the_english_ones(language: str) -> None:
    english, own = _catalog("en"), _catalog(language)
    for key, text in english.items():
        assert isinstance(text, str)
        value = own.get(key)
        if not isinstance(value, str):
            continue  # reported by the tests above
        assert _placeholders(value) == _placeholders(text), f"{language}: {key} placeholders differ"
        if "<{k}" in text:
            assert "<{k}" in value, f"{language}: {key} lost the <{{k}} mark"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_language_names_itself(language: str) -> None:
    assert _catalog(language)["language_name"] == LANGUAGE_NAMES[language]


@pytest.mark.parametrize("language", LANGUAGES)
def test_long_sentences_are_translated(language: str) -> None:
    english, own = _catalog("en"), _catalog(language)
    for key in MUST_BE_TRANSLATED:
        assert own[key] != english[key], f"{language}: {key} is still English"


@pytest.mark.parametrize("language", sorted(SCRIPTS))
def test_the_audit_warning_is_in_the_language_s_script(language: str) -> None:
    first, last = SCRIPTS[language]
    text = _catalog(language)["audit_warning"]
    assert isinstance(text, str)
    letters = [char for char in text if unicodedata.category(char)[0] in "LM"]
    native = [char for char in letters if first <= ord(char) <= last]
    assert letters
    assert len(native) / len(letters) >= 0.8, f"{language}: audit_warning is not mostly in its script"


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_catalog_starts_with_a_comment(language: str) -> None:
    first_line = (LOCALES / f"{language}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# ")
