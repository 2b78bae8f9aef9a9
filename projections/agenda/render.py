"""The CMM agenda in the reader's language: Markdown, a standalone HTML document, and PDF.

Codes are labelled from ``schemas/codes/<lang>.yaml`` (:func:`hub.codes.labels_for`); the fixed headings
and phrases come from ``phrases.yaml`` beside this module, with English for anything a language lacks.
The HTML loads nothing from outside: its CSS is inline and its fonts are named in a stack that ends in a
generic family, so that Thai, Burmese, Khmer, Lao and Chinese render with whatever the reader's system
(or the PDF renderer's fontconfig) has.
"""

from __future__ import annotations

import html
import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hub.codes import FALLBACK_LANGUAGE, CodeLabels, labels_for
from hub.contract import CountryCode, DeclineReason, ReintegrationStatus
from hub.errors import ConfigError
from projections.agenda.build import Agenda, AmendmentRow, DecisionReason

__all__ = ["Phrases", "phrases_for", "to_html", "to_markdown", "to_pdf"]

PHRASES_PATH = Path(__file__).resolve().parent / "phrases.yaml"
_FOLLOW_UP_STATUS = {
    DecisionReason.RE_TRAFFICKED: ReintegrationStatus.ReTrafficked,
    DecisionReason.LOST_CONTACT: ReintegrationStatus.LostContact,
    DecisionReason.AT_RISK: ReintegrationStatus.AtRisk,
}


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@cache
def _all_phrases() -> dict[str, dict[str, str]]:
    try:
        raw: Any = yaml.safe_load(PHRASES_PATH.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{PHRASES_PATH}: cannot be read as YAML: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get(FALLBACK_LANGUAGE), Mapping):
        raise ConfigError(f"{PHRASES_PATH}: top level must map languages, '{FALLBACK_LANGUAGE}' included")
    return {
        str(language): _flatten(entries) for language, entries in raw.items() if isinstance(entries, Mapping)
    }


def _amended(row: AmendmentRow) -> str:
    """What was amended: the event's type and the fields corrected."""
    fields = ", ".join(row.fields)
    if row.event_type is None:
        return fields
    return f"{row.event_type}: {fields}" if fields else row.event_type


@dataclass(frozen=True)
class Phrases:
    language: str
    own: Mapping[str, str]
    fallback: Mapping[str, str]

    def __call__(self, key: str, **values: object) -> str:
        """The phrase ``key`` (dotted, e.g. ``sections.new_cases``) with ``{name}`` filled in."""
        text = self.own.get(key, self.fallback.get(key, key))
        return text.format(**values) if values else text

    def count(self, key: str, n: int) -> str:
        """``key`` for ``n``, using the language's ``<key>_one`` phrase for 1."""
        return self(f"{key}_one") if n == 1 else self(key, n=n)


def phrases_for(language: str) -> Phrases:
    table = _all_phrases()
    return Phrases(language, table.get(language, {}), table[FALLBACK_LANGUAGE])


# -- a language-bound document, then two serialisations ------------------------------------------------


@dataclass(frozen=True)
class _Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    overdue: tuple[bool, ...]  # per row: highlighted

    @property
    def emphasis(self) -> frozenset[int]:
        """The cells of a highlighted row that are set in bold: the case and the last but one column
        (how late it is; every section but the figures ends with timeliness and who must act)."""
        return frozenset({0, len(self.columns) - 2})


@dataclass(frozen=True)
class _Section:
    key: str
    title: str
    table: _Table


@dataclass(frozen=True)
class _Document:
    language: str
    title: str
    subtitle: str
    meta: tuple[tuple[str, str], ...]
    sections: tuple[_Section, ...]
    none: str
    note: str


class _Writer:
    def __init__(self, agenda: Agenda, language: str) -> None:
        self.agenda = agenda
        self.labels: CodeLabels = labels_for(language)  # raises ConfigError for an unknown language
        self.say = phrases_for(language)
        self.today = agenda.as_of.astimezone(UTC).date()

    def country(self, code: CountryCode | None) -> str:
        return self.labels.label(code) if code is not None else "–"

    def timeliness(self, due: date | None, days_overdue: int) -> str:
        if days_overdue > 0:
            return self.say.count("text.overdue_by", days_overdue)
        if due is None:
            return ""
        left = (due - self.today).days
        return self.say("text.due_today") if left == 0 else self.say.count("text.due_in", left)

    def child(self, child: bool) -> str:
        return self.say("text.yes") if child else ""

    def columns(self, *keys: str) -> tuple[str, ...]:
        return tuple(self.say(f"columns.{key}") for key in keys)

    def section(
        self, key: str, columns: tuple[str, ...], rows: list[tuple[tuple[str, ...], bool]]
    ) -> _Section:
        return _Section(
            key,
            self.say(f"sections.{key}"),
            _Table(columns, tuple(cells for cells, _ in rows), tuple(late for _, late in rows)),
        )

    def document(self) -> _Document:
        agenda, say = self.agenda, self.say
        a, b = agenda.countries
        sections = (
            self.section(
                "new_cases",
                self.columns(
                    "case",
                    "identified_on",
                    "host",
                    "home",
                    "status",
                    "age",
                    "exploitation",
                    "stage",
                    "due",
                    "deadline",
                    "action_by",
                ),
                [
                    (
                        (
                            row.case_id,
                            row.identified_on.isoformat(),
                            self.country(row.host),
                            self.country(row.home),
                            self.labels.label(row.status),
                            self.labels.label(row.age_band),
                            ", ".join(self.labels.label(kind) for kind in row.exploitation_types),
                            say(f"stages.{row.stage.value}"),
                            row.due.isoformat() if row.due is not None else "",
                            self.timeliness(row.due, row.days_overdue),
                            self.country(row.owner),
                        ),
                        row.days_overdue > 0,
                    )
                    for row in agenda.new_cases
                ],
            ),
            self.section(
                "awaiting_answer",
                self.columns(
                    "case", "requested_on", "acknowledged_on", "child", "due", "deadline", "action_by"
                ),
                [
                    (
                        (
                            row.case_id,
                            row.requested_on.isoformat(),
                            row.acknowledged_on.isoformat()
                            if row.acknowledged_on is not None
                            else say("text.not_acknowledged"),
                            self.child(row.child),
                            row.due.isoformat(),
                            self.timeliness(row.due, row.days_overdue),
                            self.country(row.owner),
                        ),
                        row.days_overdue > 0,
                    )
                    for row in agenda.awaiting_answer
                ],
            ),
            self.section(
                "delayed_returns",
                self.columns("case", "accepted_on", "child", "due", "deadline", "action_by"),
                [
                    (
                        (
                            row.case_id,
                            row.accepted_on.isoformat(),
                            self.child(row.child),
                            row.due.isoformat(),
                            self.timeliness(row.due, row.days_overdue),
                            self.country(row.owner),
                        ),
                        True,
                    )
                    for row in agenda.delayed_returns
                ],
            ),
            self.section(
                "missing_handovers",
                self.columns(
                    "case", "planned_return", "crossing_point", "child", "due", "deadline", "action_by"
                ),
                [
                    (
                        (
                            row.case_id,
                            row.planned_return_on.isoformat(),
                            self.labels.label(row.crossing_point) if row.crossing_point is not None else "",
                            self.child(row.child),
                            row.due.isoformat(),
                            self.timeliness(row.due, row.days_overdue),
                            self.country(row.owner),
                        ),
                        True,
                    )
                    for row in agenda.missing_handovers
                ],
            ),
            self.section(
                "follow_ups",
                self.columns(
                    "case",
                    "milestone",
                    "handed_over_on",
                    "latest_status",
                    "child",
                    "due",
                    "deadline",
                    "action_by",
                ),
                [
                    (
                        (
                            row.case_id,
                            say("text.milestone", n=row.months),
                            row.handed_over_on.isoformat(),
                            self.labels.label(row.latest_status) if row.latest_status is not None else "",
                            self.child(row.child),
                            row.due.isoformat(),
                            self.timeliness(row.due, row.days_overdue),
                            self.country(row.owner),
                        ),
                        row.days_overdue > 0,
                    )
                    for row in agenda.follow_ups
                ],
            ),
            self.section(
                "joint_decisions",
                self.columns("case", "reason", "since", "child", "deadline", "action_by"),
                [
                    (
                        (
                            row.case_id,
                            self.reason(row.reason, row.decline_reason, row.follow_up_months),
                            row.since.isoformat(),
                            self.child(row.child),
                            self.timeliness(None, row.days_overdue),
                            self.country(row.owner),
                        ),
                        row.days_overdue > 0 or row.reason is DecisionReason.RE_TRAFFICKED,
                    )
                    for row in agenda.joint_decisions
                ],
            ),
            self.section(
                "figures", self.columns("figure", "value"), [(cells, False) for cells in self.figures()]
            ),
            self.section(
                "transits",
                self.columns("case", "host", "home", "transit", "planned_return", "route"),
                [
                    (
                        (
                            row.case_id,
                            self.country(row.host),
                            self.country(row.home),
                            self.country(row.transit),
                            row.planned_return_on.isoformat() if row.planned_return_on else "",
                            row.route,
                        ),
                        False,
                    )
                    for row in agenda.transits
                ],
            ),
            self.section(
                "amendments",
                self.columns("case", "change", "fields", "recorded_on"),
                [
                    ((row.case_id, row.kind, _amended(row), row.recorded_on.isoformat()), False)
                    for row in agenda.amendments
                ],
            ),
        )
        return _Document(
            language=self.labels.language,
            title=say("title"),
            subtitle=f"{agenda.corridor_id} · {self.country(a)} – {self.country(b)}",
            meta=(
                (say("meta.corridor"), f"{agenda.corridor_id} ({self.country(a)} – {self.country(b)})"),
                (say("meta.as_of"), agenda.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")),
                (say("meta.period"), f"{agenda.last_meeting.isoformat()} – {self.today.isoformat()}"),
                (say("meta.last_meeting"), agenda.last_meeting.isoformat()),
                (say("meta.next_meeting"), agenda.next_meeting.isoformat()),
            ),
            sections=sections,
            none=say("text.none"),
            note=say("meta.privacy"),
        )

    def reason(self, reason: DecisionReason, decline_reason: DeclineReason | None, months: int | None) -> str:
        say = self.say
        match reason:
            case DecisionReason.DECLINED:
                text = say("reasons.declined")
                return f"{text}: {self.labels.label(decline_reason)}" if decline_reason is not None else text
            case DecisionReason.REFLECTION_ENDED:
                return say("reasons.reflection_ended")
            case _:
                label = self.labels.label(_FOLLOW_UP_STATUS[reason])
                when = f" ({say('text.milestone', n=months)})" if months is not None else ""
                return f"{say('reasons.follow_up')}{when}: {label}"

    def figures(self) -> list[tuple[str, ...]]:
        figures, say = self.agenda.figures, self.say
        median = figures.median_days_to_answer
        return [
            (say("figures.identified"), str(figures.identified)),
            (say("figures.referred"), str(figures.referred)),
            (say("figures.accepted"), str(figures.accepted)),
            (say("figures.declined"), str(figures.declined)),
            (say("figures.returned"), str(figures.returned)),
            (say("figures.follow_ups"), str(figures.follow_ups)),
            (say("figures.children"), str(figures.children)),
            (say("figures.median_days_to_answer"), "–" if median is None else f"{median:g}"),
        ]


def _document(agenda: Agenda, language: str) -> _Document:
    return _Writer(agenda, language).document()


# -- Markdown ------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(agenda: Agenda, lang: str) -> str:
    """The agenda as GitHub-flavoured Markdown in ``lang``; overdue rows are in bold."""
    document = _document(agenda, lang)
    lines = [f"# {document.title} — {document.subtitle}", ""]
    lines += [f"- **{label}:** {_md_cell(value)}" for label, value in document.meta]
    lines += ["", f"_{document.note}_", ""]
    for number, section in enumerate(document.sections, start=1):
        lines += [f"## {number}. {section.title}", ""]
        table = section.table
        if not table.rows:
            lines += [document.none, ""]
            continue
        lines.append("| " + " | ".join(_md_cell(column) for column in table.columns) + " |")
        lines.append("|" + "|".join("---" for _ in table.columns) + "|")
        for cells, late in zip(table.rows, table.overdue, strict=True):
            shown = [_md_cell(cell) for cell in cells]
            if late:
                shown = [
                    f"**{cell}**" if cell and index in table.emphasis else cell
                    for index, cell in enumerate(shown)
                ]
            lines.append("| " + " | ".join(shown) + " |")
        lines.append("")
    return "\n".join(lines)


# -- HTML ----------------------------------------------------------------------------------------------

#: Fonts that cover the region's scripts, each family before the generic ``sans-serif`` that ends it:
#: Noto (Linux, and what the PDF renderer finds through fontconfig), then what Windows and macOS ship.
_FONTS = {
    "latin": '"Noto Sans", "DejaVu Sans", "Segoe UI", "Helvetica Neue", Arial',
    "th": '"Noto Sans Thai", "Noto Sans Thai UI", "Leelawadee UI", "Thonburi", "Tahoma"',
    "my": '"Noto Sans Myanmar", "Noto Sans Myanmar UI", "Padauk", "Myanmar Text", "Myanmar Sangam MN"',
    "km": '"Noto Sans Khmer", "Noto Sans Khmer UI", "Khmer OS", "Khmer UI", "Khmer Sangam MN"',
    "lo": '"Noto Sans Lao", "Noto Sans Lao UI", "Phetsarath OT", "Lao UI", "Lao Sangam MN"',
    "zh": '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", "PingFang SC"',
}
_GENERIC = "system-ui, sans-serif"
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _font_stack(language: str) -> str:
    """The reader's script first, so that shared code points (CJK, digits) take its forms."""
    order = [language] if language in _FONTS else []
    order += [key for key in ("latin", "th", "my", "km", "lo", "zh") if key not in order]
    return ", ".join([*(_FONTS[key] for key in order), _GENERIC])


_CSS = """
@page { size: A4 landscape; margin: 12mm 12mm 14mm; }
* { box-sizing: border-box; }
html { font-family: %(fonts)s; font-size: 10pt; color: #1a1a1a; line-height: %(leading)s; }
body { margin: 0 auto; max-width: 1200px; padding: 0 4px; }
h1 { font-size: 16pt; margin: 0 0 2pt; }
.subtitle { font-size: 11pt; color: #444; margin: 0 0 8pt; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 1pt 10pt; margin: 0 0 6pt; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
.note { font-style: italic; color: #555; margin: 0 0 10pt; }
h2 { font-size: 12pt; margin: 12pt 0 4pt; border-bottom: 1.5pt solid #2b5f8a; padding-bottom: 2pt;
     break-after: avoid; }
table { border-collapse: collapse; width: 100%%; margin: 0 0 6pt; }
th, td { border: 0.5pt solid #b8c2cc; padding: 2pt 4pt; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #e8eef4; font-weight: bold; }
tr { break-inside: avoid; }
tr.overdue td { color: #9b1c1c; }
td.late { font-weight: bold; }
td.date { white-space: nowrap; }
td.case { font-family: "DejaVu Sans Mono", "Noto Sans Mono", Consolas, monospace; white-space: nowrap; }
section.figures table { width: auto; min-width: 50%%; }
section.figures td:last-child { text-align: right; }
p.none { color: #555; margin: 0 0 6pt; }
"""

#: Scripts whose stacked marks need more room between lines.
_TALL = {"my": "1.9", "km": "1.8", "lo": "1.75", "th": "1.7"}


def to_html(agenda: Agenda, lang: str) -> str:
    """A complete, standalone HTML5 document in ``lang``: inline CSS, no external resource."""
    document = _document(agenda, lang)
    esc = html.escape
    css = _CSS % {"fonts": _font_stack(document.language), "leading": _TALL.get(document.language, "1.45")}
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{esc(document.language)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(document.title)} — {esc(document.subtitle)}</title>",
        f"<style>{css}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(document.title)}</h1>",
        f'<p class="subtitle">{esc(document.subtitle)}</p>',
        '<dl class="meta">',
        *(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in document.meta),
        "</dl>",
        f'<p class="note">{esc(document.note)}</p>',
    ]
    for number, section in enumerate(document.sections, start=1):
        parts.append(f'<section class="{esc(section.key.replace("_", "-"))}">')
        parts.append(f"<h2>{number}. {esc(section.title)}</h2>")
        table = section.table
        if not table.rows:
            parts += [f'<p class="none">{esc(document.none)}</p>', "</section>"]
            continue
        parts.append("<table>")
        parts.append(
            "<thead><tr>" + "".join(f"<th>{esc(column)}</th>" for column in table.columns) + "</tr></thead>"
        )
        parts.append("<tbody>")
        for cells, late in zip(table.rows, table.overdue, strict=True):
            row_class = ' class="overdue"' if late else ""
            classes = [
                " ".join(
                    name
                    for name, wanted in (
                        ("case", index == 0 and section.key != "figures"),
                        ("date", _ISO_DAY.fullmatch(cells[index]) is not None),
                        ("late", late and index in table.emphasis),
                    )
                    if wanted
                )
                for index in range(len(cells))
            ]
            parts.append(
                f"<tr{row_class}>"
                + "".join(
                    f'<td class="{name}">{esc(cell)}</td>' if name else f"<td>{esc(cell)}</td>"
                    for name, cell in zip(classes, cells, strict=True)
                )
                + "</tr>"
            )
        parts += ["</tbody>", "</table>", "</section>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# -- PDF -----------------------------------------------------------------------------------------------


def to_pdf(agenda: Agenda, lang: str, *, fonts: Sequence[Path] = ()) -> bytes:
    """The HTML rendered to PDF by WeasyPrint (which needs Pango). ``fonts`` are stylesheets of
    ``@font-face`` rules (the dashboard's vendored Noto fonts), embedded so that every script renders
    on a machine that has none of them; without them, fonts come from fontconfig."""
    weasyprint: Any = importlib.import_module("weasyprint")
    font_config = importlib.import_module("weasyprint.text.fonts").FontConfiguration()
    stylesheets = []
    for sheet in fonts:
        # @font-face rules of a stylesheet take effect only through the font configuration given to both.
        base = sheet.parent.resolve().as_uri() + "/"
        stylesheets.append(weasyprint.CSS(filename=str(sheet), base_url=base, font_config=font_config))
    pdf = weasyprint.HTML(string=to_html(agenda, lang)).write_pdf(
        stylesheets=stylesheets, font_config=font_config
    )
    if not isinstance(pdf, bytes):
        raise TypeError(f"weasyprint returned {type(pdf).__name__}, not bytes")
    return pdf


def rendered(agenda: Agenda, lang: str) -> _Document:
    """The agenda's words in ``lang``, for a page that lays it out itself (the dashboard)."""
    return _document(agenda, lang)
