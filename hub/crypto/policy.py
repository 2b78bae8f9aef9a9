"""Who may read which section of a case: the one rule behind every wrapped data key.

For a section of ``category`` of a case:

* the **holder** (the country that opened the case and holds the person) always reads it;
* the **partner** (the other country of the referral) reads it when the agreement holder->partner grants
  the category *and* the person's consent covers it;
* a **transit** country reads it when the category is granted by the agreement from the holder to it and,
  if there is a partner, by the agreement from the partner to it too, *and* consent covers it.

Nobody but the holder reads what consent leaves out, and a transit country never reads more than either
agreement gives it. Which sections are sealed at all: :data:`SEALED_CATEGORIES`, plus whatever an
agreement marks sensitive.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

#: Sections always sealed; an agreement may mark more categories sensitive.
SEALED_CATEGORIES: frozenset[str] = frozenset({"PersonalIdentity"})


def is_sealed(category: str, sensitive: Collection[str] = ()) -> bool:
    return category in SEALED_CATEGORIES or category in sensitive


def readers_of(
    category: str,
    *,
    holder: str,
    partner: str | None,
    transit: Iterable[str],
    consent: Collection[str],
    grants: Callable[[str, str], Collection[str]],
) -> frozenset[str]:
    """The countries entitled to read a ``category`` section; ``grants(a, b)`` is what a->b grants."""
    readers = {holder}
    if category not in consent:
        return frozenset(readers)
    if partner is not None and category in grants(holder, partner):
        readers.add(partner)
    for country in transit:
        if category in grants(holder, country) and (partner is None or category in grants(partner, country)):
            readers.add(country)
    return frozenset(readers)
