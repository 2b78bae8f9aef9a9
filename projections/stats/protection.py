"""Disclosure control of a linked set of published counts: what a reader can deduce, and what to
withhold so that it is not enough.

A publication is a *linked system*: cells (counts of people, and of cases behind each timeliness
indicator), some published, some withheld, tied together by relations a reader knows, each of the form
``sum(coefficient × cell) = 0`` (a total is the sum of its parts) or ``≤ 0`` (a part is at most its
total, and a total at most the sum of parts counted several times each, such as the forms of
exploitation of one person). Every count is ≥ 0 and a withheld one is ≥ 1: a zero is never withheld.

The **attacker** (:func:`intervals`) solves, for each withheld cell, the linear programs "the least and
the greatest value this cell can take given everything published": the interval a reader can deduce.
A publication is safe when every withheld cell's interval is at least ``protection`` wide.

**Secondary suppression** (:func:`protect`) is the classic iterative method of the statistical offices'
tools (tau-Argus, sdcTable): while some withheld cell is under-protected, solve a small linear program
for it, "the cheapest change of the other cells, consistent with every relation, that moves this cell
up by ``protection``" (the cost of a published cell is its value, so small cells are given up before
totals), and withhold every published cell that change touches. The reader can then no longer rule out
the moved values, so the cell's interval is wide enough; the new cells are checked in turn. Cells are
only added, so it ends. Both problems are solved by HiGHS.

Pure: no I/O; the only state is the solver's.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

Cell = Hashable
INFINITY = math.inf
#: Solutions are floating point; a width this close to the protection level counts as reaching it.
TOLERANCE = 1e-6


class Kind(StrEnum):
    EQUAL = "="  # sum(coefficient × cell) = 0
    AT_MOST = "<="  # sum(coefficient × cell) <= 0


@dataclass(frozen=True, slots=True)
class Relation:
    terms: tuple[tuple[Cell, float], ...]
    kind: Kind = Kind.EQUAL

    @staticmethod
    def total_of(total: Cell, parts: Iterable[Cell]) -> Relation:
        """``total`` is the sum of ``parts``."""
        return Relation(((total, 1.0), *((part, -1.0) for part in parts)))

    @staticmethod
    def at_most(smaller: Cell, larger: Iterable[Cell]) -> Relation:
        """``smaller`` is at most the sum of ``larger``."""
        return Relation(((smaller, 1.0), *((cell, -1.0) for cell in larger)), Kind.AT_MOST)


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a reader knows of a cell: its published value (``low == high``), a range (a rounded value),
    or, withheld, ``[1, ∞)``; a cell the reader knows nothing of but ≥ 0 is *latent*."""

    low: float
    high: float

    @property
    def fixed(self) -> bool:
        return self.low == self.high


WITHHELD = Bounds(1.0, INFINITY)
LATENT = Bounds(0.0, INFINITY)


class InconsistentPublication(ValueError):
    """The relations have no solution with the published values: the figures do not add up (for
    example an earlier publication's counts changed since it was published)."""


@dataclass
class System:
    """The cells of a publication with their true values (zero cells left out: a reader knows them),
    the relations between them, and the cells the reader knows nothing of but ≥ 0 (``latent``)."""

    values: Mapping[Cell, int]
    relations: Sequence[Relation]
    latent: frozenset[Cell] = frozenset()
    _involving: dict[Cell, list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._involving = defaultdict(list)
        for index, relation in enumerate(self.relations):
            for cell, _ in relation.terms:
                self._involving[cell].append(index)

    def value(self, cell: Cell) -> int:
        return self.values.get(cell, 0)

    def bounds(
        self, withheld: frozenset[Cell], published: Mapping[Cell, Bounds] | None = None
    ) -> dict[Cell, Bounds]:
        """Each cell's bounds as a reader knows them, with ``withheld`` cells hidden; ``published``
        overrides the bounds of published cells (rounded values)."""
        known: dict[Cell, Bounds] = {}
        for cell, value in self.values.items():
            if cell in self.latent:
                known[cell] = LATENT
            elif cell in withheld:
                known[cell] = WITHHELD
            elif published is not None and cell in published:
                known[cell] = published[cell]
            else:
                known[cell] = Bounds(value, value)
        return known

    def neighbours(self, cell: Cell) -> set[Cell]:
        return {
            member for index in self._involving.get(cell, ()) for member, _ in self.relations[index].terms
        }


def _silent_solver() -> Any:
    """A HiGHS instance that prints nothing. HiGHS prints its banner on stdout when the first instance
    of a process is made, before any option can be set, and stdout is where the tables go."""
    import highspy

    global _BANNER_SHOWN
    if not _BANNER_SHOWN:
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 1)
                solver = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _BANNER_SHOWN = True
    else:
        solver = highspy.Highs()  # type: ignore[no-untyped-call]
    solver.setOptionValue("output_flag", False)
    return solver


_BANNER_SHOWN = False


@dataclass
class _Program:
    """A linear program over ``columns`` ready for HiGHS: bounds, and rows ``low ≤ A·x ≤ high``."""

    columns: list[Cell]
    col_low: list[float]
    col_high: list[float]
    row_low: list[float] = field(default_factory=list)
    row_high: list[float] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    indices: list[int] = field(default_factory=list)
    coefficients: list[float] = field(default_factory=list)

    def add_row(self, terms: Iterable[tuple[int, float]], low: float, high: float) -> None:
        self.starts.append(len(self.indices))
        for index, coefficient in terms:
            self.indices.append(index)
            self.coefficients.append(coefficient)
        self.row_low.append(low)
        self.row_high.append(high)

    def solver(self, costs: Sequence[float] | None = None) -> Any:
        import highspy

        inf = highspy.kHighsInf
        solver = _silent_solver()
        count = len(self.columns)
        solver.addCols(
            count,
            np.asarray(costs if costs is not None else [0.0] * count, dtype=np.float64),
            np.asarray([max(low, -inf) for low in self.col_low], dtype=np.float64),
            np.asarray([min(high, inf) for high in self.col_high], dtype=np.float64),
            0,
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.int32),
            np.zeros(0, dtype=np.float64),
        )
        if self.row_low:
            solver.addRows(
                len(self.row_low),
                np.asarray([max(low, -inf) for low in self.row_low], dtype=np.float64),
                np.asarray([min(high, inf) for high in self.row_high], dtype=np.float64),
                len(self.indices),
                np.asarray(self.starts, dtype=np.int32),
                np.asarray(self.indices, dtype=np.int32),
                np.asarray(self.coefficients, dtype=np.float64),
            )
        return solver


def _components(cells: Iterable[Cell], system: System, free: set[Cell]) -> list[list[Cell]]:
    """The groups of free cells that share a relation, directly or through other free cells."""
    parent: dict[Cell, Cell] = {cell: cell for cell in free}

    def root(cell: Cell) -> Cell:
        while parent[cell] != cell:
            parent[cell] = parent[parent[cell]]
            cell = parent[cell]
        return cell

    for relation in system.relations:
        members = [cell for cell, _ in relation.terms if cell in free]
        for other in members[1:]:
            a, b = root(members[0]), root(other)
            if a != b:
                parent[b] = a
    groups: dict[Cell, list[Cell]] = defaultdict(list)
    for cell in cells:
        groups[root(cell)].append(cell)
    return list(groups.values())


def _attacker_program(system: System, known: Mapping[Cell, Bounds], component: set[Cell]) -> _Program:
    columns = sorted(component, key=repr)
    position = {cell: index for index, cell in enumerate(columns)}
    program = _Program(columns, [known[c].low for c in columns], [known[c].high for c in columns])
    rows = {index for cell in component for index in system._involving.get(cell, ())}
    for index in sorted(rows):
        relation = system.relations[index]
        terms: list[tuple[int, float]] = []
        constant = 0.0
        for cell, coefficient in relation.terms:
            if cell in position:
                terms.append((position[cell], coefficient))
            else:
                # A published cell (zero when it is not a cell at all).
                constant += coefficient * (known[cell].low if cell in known else 0.0)
        low = -constant if relation.kind is Kind.EQUAL else -INFINITY
        program.add_row(terms, low, -constant)
    return program


def intervals(
    system: System,
    withheld: frozenset[Cell],
    *,
    targets: Iterable[Cell] | None = None,
    published: Mapping[Cell, Bounds] | None = None,
) -> dict[Cell, tuple[float, float]]:
    """For each withheld cell (or each of ``targets``), the least and greatest value a reader can
    deduce for it from the published cells and the relations. Raises
    :class:`InconsistentPublication` when the published values admit no solution at all."""
    import highspy

    known = system.bounds(withheld, published)
    free = {cell for cell, bounds in known.items() if not bounds.fixed}
    wanted = [cell for cell in (targets if targets is not None else withheld) if cell in free]
    result: dict[Cell, tuple[float, float]] = {}
    for group in _components(wanted, system, free):
        # The whole component: every free cell linked to the targets, not only the targets.
        component = _closure(group, system, free)
        program = _attacker_program(system, known, component)
        solver = program.solver()
        position = {cell: index for index, cell in enumerate(program.columns)}
        for cell in group:
            ends: list[float] = []
            for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
                solver.changeColCost(position[cell], 1.0)
                solver.changeObjectiveSense(sense)
                solver.run()
                status = solver.getModelStatus()
                if status == highspy.HighsModelStatus.kOptimal:
                    ends.append(solver.getSolution().col_value[position[cell]])
                elif status in (
                    highspy.HighsModelStatus.kUnbounded,
                    highspy.HighsModelStatus.kUnboundedOrInfeasible,
                ):
                    ends.append(INFINITY if sense == highspy.ObjSense.kMaximize else -INFINITY)
                else:
                    raise InconsistentPublication(f"the published figures admit no values ({status.name})")
                solver.changeColCost(position[cell], 0.0)
            result[cell] = (ends[0], ends[1])
    return result


def _closure(seeds: Iterable[Cell], system: System, free: set[Cell]) -> set[Cell]:
    found = set(seeds)
    frontier = list(found)
    while frontier:
        cell = frontier.pop()
        for other in system.neighbours(cell):
            if other in free and other not in found:
                found.add(other)
                frontier.append(other)
    return found


def under_protected(
    system: System,
    withheld: frozenset[Cell],
    protection: float,
    *,
    published: Mapping[Cell, Bounds] | None = None,
) -> dict[Cell, tuple[float, float]]:
    """The withheld cells whose interval is narrower than ``protection``, with their intervals."""
    found = intervals(system, withheld, published=published)
    return {cell: ends for cell, ends in found.items() if ends[1] - ends[0] < protection - TOLERANCE}


def _lower(system: System, cell: Cell) -> float:
    """The least value a cell may take in a perturbation: a cell that exists holds at least one person
    (a reader knows a withheld cell is not zero); a latent one may be empty."""
    return 0.0 if cell in system.latent else 1.0


def _shield(
    system: System,
    cell: Cell,
    withheld: frozenset[Cell],
    protection: float,
    hops: int | None,
    fixed: frozenset[Cell] = frozenset(),
) -> set[Cell] | None:
    """The published cells to withhold so that ``cell`` can move up by ``protection`` (down when it
    is negative) unseen: the
    support of the cheapest perturbation of the cells within ``hops`` relations of it (all when None).
    None when no perturbation exists within that reach."""
    import highspy

    reach = {cell}
    frontier = {cell}
    depth = 0
    while frontier and (hops is None or depth < hops):
        frontier = {other for member in frontier for other in system.neighbours(member) if other not in reach}
        # A zero is not a cell, and what was published before cannot be taken back.
        frontier = {
            other
            for other in frontier
            if (system.value(other) > 0 or other in system.latent) and other not in fixed
        }
        reach |= frontier
        depth += 1
    columns = sorted(reach, key=repr)
    position = {c: index for index, c in enumerate(columns)}
    size = len(columns)
    # Columns 0..n-1 move a cell up, n..2n-1 move it down.
    low = [0.0] * (2 * size)
    high = [INFINITY] * (2 * size)
    costs = [0.0] * (2 * size)
    for index, member in enumerate(columns):
        value = system.value(member)
        high[size + index] = max(value - _lower(system, member), 0.0)
        # A published cell costs its value (at least 1); an already withheld or latent one almost nothing.
        weight = 1e-3 if (member in withheld or member in system.latent) else max(float(value), 1.0)
        costs[index] = costs[size + index] = weight
    if protection >= 0:  # the cell moves up by ``protection``
        low[position[cell]] = protection
        high[size + position[cell]] = 0.0
    else:  # or down
        high[position[cell]] = 0.0
        low[size + position[cell]] = -protection
    program = _Program([*columns, *columns], low, high)
    rows = {index for member in reach for index in system._involving.get(member, ())}
    for index in sorted(rows):
        relation = system.relations[index]
        terms: list[tuple[int, float]] = []
        slack = 0.0
        for member, coefficient in relation.terms:
            slack -= coefficient * system.value(member)
            if member in position:
                terms.append((position[member], coefficient))
                terms.append((size + position[member], -coefficient))
        if not terms:
            continue
        if relation.kind is Kind.EQUAL:
            program.add_row(terms, 0.0, 0.0)
        else:
            program.add_row(terms, -INFINITY, slack)
    solver = program.solver(costs)
    solver.run()
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    moved = solver.getSolution().col_value
    return {
        member
        for index, member in enumerate(columns)
        if abs(moved[index] - moved[size + index]) > TOLERANCE
        and member not in withheld
        and member not in system.latent
    }


def _cover(
    system: System, cell: Cell, withheld: frozenset[Cell], protection: float, fixed: frozenset[Cell]
) -> set[Cell] | None:
    """The cells to withhold so that ``cell`` can move by ``protection`` unseen: up, else down (a cell
    at the top of what the fixed cells allow, such as one withheld in an earlier publication), else
    part up and part down. Near cells first, then farther."""
    moves: list[tuple[float, ...]] = [(protection,), (-protection,)]
    moves += [(up, up - protection) for up in range(1, math.ceil(protection))]
    for move in moves:
        for hops in (2, 4, None):
            found: set[Cell] = set()
            for amount in move:
                shield = _shield(system, cell, withheld, amount, hops, fixed)
                if shield is None:
                    break
                found |= shield
            else:
                return found
    return None


class ProtectionFailed(RuntimeError):
    """No set of suppressions protects every cell (should not happen: withholding everything does)."""


@dataclass(frozen=True)
class Protection:
    withheld: frozenset[Cell]
    primary: frozenset[Cell]
    rounds: int
    #: the final check: each withheld cell's interval as a reader can deduce it
    intervals: Mapping[Cell, tuple[float, float]]

    @property
    def secondary(self) -> frozenset[Cell]:
        return self.withheld - self.primary


def protect(
    system: System,
    primary: Iterable[Cell],
    protection: float,
    *,
    published: Mapping[Cell, Bounds] | None = None,
    fixed: frozenset[Cell] = frozenset(),
    max_rounds: int = 50,
) -> Protection:
    """``primary`` and the fewest other cells (by value) to withhold so that every withheld cell's
    interval is at least ``protection`` wide; checked with :func:`intervals` before it returns.
    ``published`` gives the bounds of published cells a reader does not know exactly (rounded);
    ``fixed`` cells cannot be withheld (they were published before)."""
    first = frozenset(cell for cell in primary if system.value(cell) > 0)
    withheld = first
    for rounds in range(1, max_rounds + 1):
        found = intervals(system, withheld, published=published)
        weak = {cell for cell, (low, high) in found.items() if high - low < protection - TOLERANCE}
        if not weak:
            return Protection(withheld, first, rounds, found)
        added: set[Cell] = set()
        for cell in sorted(weak, key=lambda c: (system.value(c), repr(c))):
            shield = _cover(system, cell, withheld | added, protection, fixed)
            if shield is None:
                raise ProtectionFailed(f"no suppression pattern protects {cell!r}")
            added |= shield
        withheld = withheld | added
    raise ProtectionFailed(f"not every cell protected after {max_rounds} rounds")
