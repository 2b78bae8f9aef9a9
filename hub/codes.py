"""Labels of the shared code lists, in the languages of the region (``schemas/codes/<lang>.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hub.errors import ConfigError

FALLBACK_LANGUAGE = "en"


def codes_root() -> Path:
    return Path(__file__).resolve().parent.parent / "schemas" / "codes"


@dataclass(frozen=True)
class CodeLabels:
    language: str
    titles: dict[str, str]
    labels: dict[str, dict[str, str]]

    def label(self, code: StrEnum) -> str:
        return self.labels.get(type(code).__name__, {}).get(code.value, code.value)

    def title(self, code_list: str) -> str:
        return self.titles.get(code_list, code_list)


def available_languages(root: Path | None = None) -> list[str]:
    return sorted(path.stem for path in (root or codes_root()).glob("*.yaml"))


def _load(path: Path) -> CodeLabels:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("code_lists"), dict):
        raise ConfigError(f"{path}: key 'code_lists' is missing or not a mapping")
    titles: dict[str, str] = {}
    labels: dict[str, dict[str, str]] = {}
    for name, entry in raw["code_lists"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("labels"), dict):
            raise ConfigError(f"{path}: key 'code_lists.{name}.labels' is missing")
        titles[name] = str(entry.get("title", name))
        labels[name] = {str(symbol): str(text) for symbol, text in entry["labels"].items()}
    return CodeLabels(language=str(raw.get("language", path.stem)), titles=titles, labels=labels)


def load_labels(language: str) -> CodeLabels:
    """Exactly what the language's file holds, without fallback."""
    path = codes_root() / f"{language}.yaml"
    if not path.exists():
        raise ConfigError(
            f"{path}: no labels for language {language!r}; available: {', '.join(available_languages())}"
        )
    return _load(path)


@cache
def labels_for(language: str) -> CodeLabels:
    """Labels in ``language``; a code the language lacks falls back to English, then to itself."""
    own = load_labels(language)
    if language == FALLBACK_LANGUAGE:
        return own
    fallback = labels_for(FALLBACK_LANGUAGE)
    merged = {
        name: {**fallback.labels.get(name, {}), **own.labels.get(name, {})}
        for name in {*fallback.labels, *own.labels}
    }
    return CodeLabels(language, {**fallback.titles, **own.titles}, merged)
