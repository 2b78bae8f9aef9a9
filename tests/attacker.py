"""A reader of the published statistics trying to recover withheld counts: written apart from
``projections.stats.protection``, with a model of its own, and solved by the same solver (HiGHS), so
that a mistake in the protection's model of the reader does not hide itself.

The reader's model is the tightest linear one: the unknowns are the numbers of people of each
*profile* (one value per dimension, a set of values on the dimensions where a person may have several),
and every published count is the sum of the profiles it counts. Every unknown is ≥ 0, a withheld count
holds ≥ 1 (a zero is never withheld), a published one its value (or the range its rounding leaves).
A profile that would fall in a count the publication leaves out (a zero) is ruled out. The cases
behind the timeliness indicators add up over the corridors and are at most the corridor's people.
Several publications are read together: a count of one publication counts the profiles of its period.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.sparse import csr_array

ALL = "*"


@dataclass(frozen=True)
class Reading:
    """One publication as a reader holds it: its months; each count by its key over ``dimensions``
    (None: withheld); each indicator's cases by (measure, corridor), None when withheld; and the
    rounding base of its figures."""

    months: frozenset[str]
    people: Mapping[tuple[str, ...], int | None]
    cases: Mapping[tuple[str, str], int | None]
    rounding_base: int = 1


def _subsets(values: Iterable[str]) -> list[frozenset[str]]:
    values = sorted(values)
    return [frozenset(c) for n in range(1, len(values) + 1) for c in itertools.combinations(values, n)]


def profiles(
    readings: Sequence[Reading], dimensions: Sequence[str], multi: frozenset[str], period: str
) -> list[tuple[frozenset[str], ...]]:
    """Every profile no published zero rules out, found dimension by dimension (the period first)."""
    assert dimensions[0] == period
    options: list[list[frozenset[str]]] = []
    for i, dim in enumerate(dimensions):
        seen = {key[i] for reading in readings for key in reading.people if key[i] != ALL}
        if dim == period:
            seen |= {month for reading in readings for month in reading.months}
        options.append(_subsets(seen) if dim in multi else [frozenset({v}) for v in sorted(seen)])
    # For each publication, the patterns it shows and the keys of each (a key left out is zero).
    shown: list[tuple[Reading, dict[frozenset[int], set[tuple[str, ...]]]]] = []
    for reading in readings:
        by_pattern: dict[frozenset[int], set[tuple[str, ...]]] = {}
        for key in reading.people:
            by_pattern.setdefault(frozenset(i for i, v in enumerate(key) if v != ALL), set()).add(key)
        shown.append((reading, by_pattern))

    def allowed(partial: tuple[frozenset[str], ...]) -> bool:
        depth = len(partial)
        for reading, by_pattern in shown:
            if not partial[0] <= reading.months:
                continue  # outside this publication: none of its counts include the profile
            for pattern, keys in by_pattern.items():
                if max(pattern, default=-1) >= depth:
                    continue
                choices = [sorted(partial[i]) if i in pattern else [ALL] for i in range(len(dimensions))]
                if any(key not in keys for key in itertools.product(*choices)):
                    return False
        return True

    found: list[tuple[frozenset[str], ...]] = [(month,) for month in options[0] if month]
    found = [partial for partial in found if allowed(partial)]
    for i in range(1, len(dimensions)):
        found = [
            (*partial, option) for partial in found for option in options[i] if allowed((*partial, option))
        ]
    return found


def intervals(
    readings: Sequence[Reading],
    dimensions: Sequence[str],
    multi: frozenset[str],
    *,
    period: str = "period",
    corridor: str = "corridor",
) -> dict[tuple[int, str, tuple[str, ...]], tuple[float, float]]:
    """For every withheld figure (people ``("people", key)`` or cases ``("cases", (measure,
    corridor))``, of publication ``index``), the least and greatest value the reader can deduce."""
    found = profiles(readings, dimensions, multi, period)
    period_at, corridor_at = dimensions.index(period), dimensions.index(corridor)
    n_profiles = len(found)
    case_vars: dict[tuple[int, str, str], int] = {}
    for index, reading in enumerate(readings):
        for (measure, where), cases in reading.cases.items():
            if cases != 0:
                case_vars[(index, measure, where)] = n_profiles + len(case_vars)
    size = n_profiles + len(case_vars)
    rows: list[dict[int, float]] = []
    low: list[float] = []
    high: list[float] = []
    targets: list[tuple[tuple[int, str, tuple[str, ...]], dict[int, float]]] = []

    def members(reading: Reading, key: tuple[str, ...]) -> dict[int, float]:
        return {
            j: 1.0
            for j, profile in enumerate(found)
            if next(iter(profile[period_at])) in reading.months
            and all(value == ALL or value in profile[i] for i, value in enumerate(key))
        }

    for index, reading in enumerate(readings):
        base = reading.rounding_base
        for key, value in reading.people.items():
            row = members(reading, key)
            if value is None:
                rows.append(row)
                low.append(1.0)
                high.append(math.inf)
                targets.append(((index, "people", key), row))
            else:
                rows.append(row)
                low.append(value)
                high.append(value + base - 1)
        corridors = {where for (_, where) in reading.cases if where != ALL}
        for (measure, where), cases in reading.cases.items():
            if cases == 0:
                continue
            variable = case_vars[(index, measure, where)]
            row = {variable: 1.0}
            if cases is None:
                rows.append(row)
                low.append(1.0)
                high.append(math.inf)
                targets.append(((index, "cases", (measure, where)), row))
            else:
                rows.append(row)
                low.append(cases)
                high.append(cases + base - 1)
            # At most the people of the corridor (of everyone for the overall figure).
            people = {
                j: -1.0
                for j, profile in enumerate(found)
                if next(iter(profile[period_at])) in reading.months
                and (where == ALL or where in profile[corridor_at])
            }
            rows.append({variable: 1.0, **people})
            low.append(-math.inf)
            high.append(0.0)
        for measure in {measure for (measure, _) in reading.cases}:
            parts = [case_vars[(index, measure, c)] for c in corridors if (index, measure, c) in case_vars]
            total = case_vars.get((index, measure, ALL))
            if total is not None:
                rows.append({total: 1.0, **{p: -1.0 for p in parts}})
                low.append(0.0)
                high.append(0.0)
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    solver.addVars(size, np.zeros(size), np.full(size, inf))
    matrix = _matrix(rows, size)
    solver.addRows(
        len(rows),
        np.asarray([max(v, -inf) for v in low]),
        np.asarray([min(v, inf) for v in high]),
        matrix.nnz,
        matrix.indptr.astype(np.int32),
        matrix.indices.astype(np.int32),
        matrix.data,
    )
    result: dict[tuple[int, str, tuple[str, ...]], tuple[float, float]] = {}
    for name, row in targets:
        columns = np.asarray(sorted(row), dtype=np.int32)
        ends = []
        for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
            solver.changeColsCost(len(columns), columns, np.ones(len(columns)))
            solver.changeObjectiveSense(sense)
            solver.run()
            status = solver.getModelStatus()
            if status in (
                highspy.HighsModelStatus.kUnbounded,
                highspy.HighsModelStatus.kUnboundedOrInfeasible,
            ):
                ends.append(math.inf)
            else:
                assert status == highspy.HighsModelStatus.kOptimal, (name, status)
                ends.append(solver.getInfo().objective_function_value)
            solver.changeColsCost(len(columns), columns, np.zeros(len(columns)))
        result[name] = (ends[0], ends[1])
    return result


def _matrix(rows: Sequence[dict[int, float]], size: int) -> csr_array:
    data: list[float] = []
    indices: list[int] = []
    pointers = [0]
    for row in rows:
        for j, value in sorted(row.items()):
            indices.append(j)
            data.append(value)
        pointers.append(len(indices))
    return csr_array(
        (np.asarray(data, dtype=float), np.asarray(indices, dtype=np.int32), np.asarray(pointers)),
        shape=(len(rows), size),
    )
