"""Cell suppression: which published counts must be withheld so that no small group can be seen.

Primary suppression withholds every count below the threshold. Secondary suppression then looks at
every published relation "total = sum of parts" (a row or column of a table and its total, or any
coarser count and the finer counts that add up to it): if exactly one member of a relation is withheld,
it could be worked out by subtraction, so one more is withheld (the smallest published part, or the
total when no part is left), and the relations of that member are checked again, until none has
exactly one withheld member. Members are only ever added, so it ends.

The heuristic is the usual one of statistical offices for published tables; it does not solve the
general linear system of all relations at once (as tau-argus does), so it is paired with coarse tables
and a high enough threshold.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=tuple[str, ...])


@dataclass(frozen=True)
class Relation(Generic[Key]):
    """``total`` is the sum of ``parts`` (or, for multi-counted parts, at most their sum)."""

    total: Key
    parts: tuple[Key, ...]

    @property
    def members(self) -> tuple[Key, ...]:
        return (self.total, *self.parts)


def suppress(values: Mapping[Key, int], relations: Iterable[Relation[Key]], threshold: int) -> frozenset[Key]:
    """The keys of ``values`` to withhold: those below ``threshold`` and those that would reveal them
    through ``relations``. Every key of a relation must be in ``values``; a count of zero is a known
    zero and should be left out of both (it cannot reveal anyone)."""
    hidden = {key for key, value in values.items() if value < threshold}
    checks = list(relations)
    involving: dict[Key, list[int]] = {}
    for index, relation in enumerate(checks):
        for member in relation.members:
            involving.setdefault(member, []).append(index)
    queue = deque(range(len(checks)))
    while queue:
        relation = checks[queue.popleft()]
        if sum(member in hidden for member in relation.members) != 1:
            continue
        published = [part for part in relation.parts if part not in hidden]
        # The smallest published part costs least information; ties go to the first key, so that the
        # result does not depend on the order of the input.
        target = min(published, key=lambda part: (values[part], part)) if published else relation.total
        hidden.add(target)
        queue.extend(involving.get(target, ()))
    return frozenset(hidden)
