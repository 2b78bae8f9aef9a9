"""Code-list labels: every code of the contract has a label in every language of the region."""

from __future__ import annotations

import pytest

from hub.codes import available_languages, labels_for, load_labels
from hub.contract import AgeBand, CountryCode, ReceiptStatus
from hub.errors import ConfigError
from hub.schema_registry import default_contract

LANGUAGES = ["en", "fil", "id", "km", "lo", "ms", "my", "th", "vi", "zh"]


def _enums() -> dict[str, list[str]]:
    return {
        schema["name"]: schema["symbols"]
        for schema in default_contract().latest.named_types().values()
        if schema["type"] == "enum"
    }


def test_the_region_s_languages_are_shipped() -> None:
    assert available_languages() == LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_code_has_a_label_in_every_language(language: str) -> None:
    own = load_labels(language)  # the file alone, no English fallback
    for name, symbols in _enums().items():
        assert list(own.labels.get(name, {})) == symbols, f"{language}: {name} labels differ"
        assert all(own.labels[name].values()), f"{language}: {name} has an empty label"
        assert name in own.titles, f"{language}: {name} has no title"


def test_labels_are_in_the_reader_s_language() -> None:
    assert labels_for("en").label(CountryCode.LA) == "Lao PDR"
    assert labels_for("th").label(CountryCode.MM) == "เมียนมา"
    assert labels_for("zh").label(ReceiptStatus.Rejected) == "已拒绝"
    assert "?" not in labels_for("my").label(AgeBand.UncertainPresumedChild)


def test_an_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"no labels for language 'xx'; available: en, fil"):
        labels_for("xx")
