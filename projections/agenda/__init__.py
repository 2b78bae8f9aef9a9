"""The Case Management Meeting agenda of a corridor: built from the case states, rendered per language."""

from projections.agenda.build import (
    Agenda,
    AwaitingAnswer,
    DecisionReason,
    DelayedReturn,
    Figures,
    FollowUpDue,
    JointDecision,
    MissingHandover,
    NewCase,
    build_agenda,
    corridor_cases,
)
from projections.agenda.render import to_html, to_markdown, to_pdf

__all__ = [
    "Agenda",
    "AwaitingAnswer",
    "DecisionReason",
    "DelayedReturn",
    "Figures",
    "FollowUpDue",
    "JointDecision",
    "MissingHandover",
    "NewCase",
    "build_agenda",
    "corridor_cases",
    "to_html",
    "to_markdown",
    "to_pdf",
]
