"""Building and checking a regional-statistics publication, against naive threshold-only suppression.

One run, one set of case states. Synthetic cases (``--events``, default about 1,000,000 accepted
events, some 245,000 cases) are identified over 17 months (2024-01 to 2025-05, nothing recorded
after 2025-06-01); they are generated and folded chunk by chunk, then measured:

- **protected**: ``regional_statistics`` under the shipped rules (``config/statistics.yaml``: every
  table over period, corridor, exploitation, labour sector, sex, age band and agency type), i.e.
  counting, primary suppression, secondary suppression and the attacker's linear programs;
- **baseline**: what a naive publisher does with the same states and the same tables: count every
  published cell and every indicator's cases, blank the counts under the minimum frequency (primary
  suppression only, no latent joints, no linear programs) and build the same tables and indicators.
  ``protection = 1`` cannot stand in for it: a lone withheld cell of a row is still deduced from the
  row total, so that too suppresses secondarily and solves the linear programs;
- both at ``minimum_frequency`` 5 (shipped) and 11 (CTDC's k);
- **linked**: the first half of the period published (``to_document`` / ``from_document``), then the
  whole period protected together with it (overlapping, same cases, so consistent).

Each configuration is run twice: once untraced for its seconds, once under ``tracemalloc`` for its
peak (``peak MiB``: the Python allocations made during the call alone, the states already held not
included; HiGHS's own C++ memory is not traced). ``maxrss`` is the whole process's peak RSS at the
end, generation and fold included. ``cells`` are the publication's non-zero counts (people and cases
behind the indicators); shares are of those cells. Prints a table, then one JSON line of every figure.

Usage: python benchmarks/stats.py [--events N] [--quick] [--seed S]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import resource
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

# ``python benchmarks/stats.py`` puts this folder first on the path, where ``projections.py`` (a
# benchmark) would hide the ``projections`` package: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from hub.agreements import Agreements, default_agreements
from hub.synthetic import synthetic_stream
from projections.cases.fold import CaseState, fold
from projections.stats.aggregate import (
    Check,
    Key,
    Period,
    Published,
    _indicators,
    _samples,
    _table,
    cases_cell,
    corridor_of,
    default_period,
    keys_of,
    patterns_of,
    people_cell,
    profile,
    regional_statistics,
)
from projections.stats.protection import Cell as CellId
from projections.stats.protection import InconsistentPublication, ProtectionFailed
from projections.stats.publication import from_document, to_document
from projections.stats.rules import StatisticsRules, load_rules

RULES = Path(__file__).resolve().parent.parent / "config" / "statistics.yaml"
START = datetime(2024, 1, 1, tzinfo=UTC)
UNTIL = datetime(2025, 6, 1, tzinfo=UTC)
OPENING_DAYS = (UNTIL - START).days - 14  # identifications up to mid-May 2025
CHUNK_CASES = 10_000
EVENTS_PER_CASE = 4.0  # the first chunk's guess; later chunks use the rate seen so far
MIB = 1 << 20


@dataclass(frozen=True)
class Figures:
    seconds: float
    peak_mib: float
    check: Check


@dataclass(frozen=True)
class Failed:
    seconds: float  # until it failed
    error: str


def generate(events: int, seed: int) -> tuple[dict[str, CaseState], int, float, float]:
    """About ``events`` events of whole synthetic cases, folded chunk by chunk (only a chunk's events
    are held at once). Returns the states, the events, and the seconds of generation and of fold."""
    states: dict[str, CaseState] = {}
    made = cases = chunk = 0
    generating = folding = 0.0
    while made < events:
        rate = made / cases if cases else EVENTS_PER_CASE
        size = min(CHUNK_CASES, max(1, math.ceil((events - made) / rate)))
        started = time.perf_counter()
        stream = list(
            synthetic_stream(
                seed * 1_000_003 + chunk,
                size,
                start=START,
                until=UNTIL,
                opening_days=OPENING_DAYS,
                run_tag=f"S{chunk:03d}-",
            )
        )
        generating += time.perf_counter() - started
        started = time.perf_counter()
        states = fold(stream, states)
        folding += time.perf_counter() - started
        made += len(stream)
        cases += size
        chunk += 1
    return states, made, generating, folding


def naive_statistics(
    states: Sequence[CaseState],
    agreements: Agreements,
    *,
    rules: StatisticsRules,
    as_of: date,
    period: Period,
) -> Check:
    """The baseline: the same tables and indicators, every count under the minimum frequency
    blanked, nothing else (no latent joints, no relations, no linear programs)."""
    cases = [state for state in {state.case_id: state for state in states}.values() if not state.void]
    within = [state for state in cases if period.contains(state.identified_on)]
    patterns = patterns_of(rules.tables)
    people: Counter[Key] = Counter()
    for state in within:
        values = profile(state, agreements, period)
        for pattern in patterns:
            people.update(keys_of(values, pattern))
    samples = _samples(within, agreements, as_of)
    k = rules.minimum_frequency
    small: set[CellId] = {people_cell(period, key) for key, value in people.items() if 0 < value < k}
    small |= {
        cases_cell(period, measure.value, where)
        for (measure, where), sample in samples.items()
        if 0 < sample.cases < k
    }
    withheld = frozenset(small)
    tables = tuple(_table(rule, period, people, withheld, rules.rounding_base) for rule in rules.tables)
    corridors = sorted({corridor_of(state, agreements) for state in within})
    timeliness = _indicators(samples, corridors, period, withheld, rules)
    assert len(tables) == len(rules.tables)
    assert timeliness
    cells = sum(1 for value in people.values() if value > 0)
    cells += sum(1 for sample in samples.values() if sample.cases > 0)
    return Check(cells=cells, withheld=len(small), primary=len(small), secondary=0, narrowest=None, rounds=0)


def measure(run: Callable[[], Check]) -> Figures | Failed:
    """Seconds of an untraced call, then the tracemalloc peak of a second, traced one. A publication
    the statistics refuse (no protection found, or inconsistent with the earlier one) is a result too."""
    gc.collect()
    started = time.perf_counter()
    try:
        check = run()
    except (ProtectionFailed, InconsistentPublication) as exc:
        return Failed(time.perf_counter() - started, f"{type(exc).__name__}: {exc}")
    seconds = time.perf_counter() - started
    gc.collect()
    tracemalloc.start()
    try:
        traced = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if traced != check:
        raise RuntimeError(f"two runs of the same statistics differ: {check} and {traced}")
    return Figures(seconds, peak / MIB, check)


def halves(period: Period) -> Period:
    months = period.months
    return Period(months[0], months[max(len(months) // 2, 1) - 1], period.unit)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="accepted events (whole cases)")
    parser.add_argument("--quick", action="store_true", help="about 50,000 events")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.events = 50_000
    if args.events < 1:
        parser.error("--events must be at least 1")

    states_by_id, events, generating, folding = generate(args.events, args.seed)
    states = list(states_by_id.values())
    made = f"{events:,} events, {len(states):,} cases"
    print(f"{made}: generated in {generating:.1f} s, folded in {folding:.1f} s")

    agreements = default_agreements()
    shipped = load_rules(RULES)
    strict = StatisticsRules.model_validate({**shipped.model_dump(), "minimum_frequency": 11})
    as_of = max(state.last_event_at for state in states if not state.void).date()
    whole = default_period((state for state in states if not state.void), shipped.period, as_of)
    assert whole is not None
    first = halves(whole)

    def protected(
        rules: StatisticsRules, period: Period, earlier: Sequence[Published] = ()
    ) -> Callable[[], Check]:
        return lambda: (
            regional_statistics(
                states, agreements, rules=rules, as_of=as_of, period=period, earlier=earlier
            ).check
        )

    def baseline(rules: StatisticsRules) -> Callable[[], Check]:
        return lambda: naive_statistics(states, agreements, rules=rules, as_of=as_of, period=whole)

    results: dict[str, Figures | Failed] = {}
    results["k5"] = measure(protected(shipped, whole))
    results["baseline_k5"] = measure(baseline(shipped))
    results["k11"] = measure(protected(strict, whole))
    results["baseline_k11"] = measure(baseline(strict))
    results["first_half"] = first_half = measure(protected(shipped, first))
    if isinstance(first_half, Figures):
        earlier = from_document(
            to_document(
                regional_statistics(states, agreements, rules=shipped, as_of=as_of, period=first),
                published=f"{as_of.year:04d}-{as_of.month:02d}",
            )
        )
        results["linked"] = measure(protected(shipped, whole, [earlier]))
    else:
        results["linked"] = Failed(0.0, "the first half was not published")
    maxrss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    labels = {
        "k5": f"protected k=5 {whole.label}",
        "baseline_k5": "baseline k=5 (primary only)",
        "k11": "protected k=11",
        "baseline_k11": "baseline k=11 (primary only)",
        "first_half": f"protected k=5 {first.label}",
        "linked": f"k=5 {whole.label} linked",
    }
    print(
        f"{'':36}{'seconds':>9}{'peak MiB':>10}{'cells':>7}{'withheld':>9}{'primary':>8}{'secondary':>10}"
        f"{'% prim':>8}{'% sec':>7}{'narrowest':>10}{'rounds':>7}"
    )
    for name, result in results.items():
        if isinstance(result, Failed):
            print(f"{labels[name]:36}{result.seconds:>9.2f}  failed: {result.error}")
            continue
        check = result.check
        narrowest = "-" if check.narrowest is None else f"{check.narrowest:.1f}"
        shares = 100 * check.primary / max(check.cells, 1), 100 * check.secondary / max(check.cells, 1)
        print(
            f"{labels[name]:36}{result.seconds:>9.2f}{result.peak_mib:>10.1f}{check.cells:>7}"
            f"{check.withheld:>9}{check.primary:>8}{check.secondary:>10}"
            f"{shares[0]:>8.2f}{shares[1]:>7.2f}"
            f"{narrowest:>10}{check.rounds:>7}"
        )

    def ratio(name: str, against: str) -> float | None:
        result, base = results[name], results[against]
        if isinstance(result, Failed) or isinstance(base, Failed):
            return None
        return round(result.seconds / base.seconds, 3)

    def matches(k: str) -> bool | None:
        result, base = results[k], results[f"baseline_{k}"]
        if isinstance(result, Failed) or isinstance(base, Failed):
            return None
        return (result.check.cells, result.check.primary) == (base.check.cells, base.check.primary)

    ratios = {"k5": ratio("k5", "baseline_k5"), "k11": ratio("k11", "baseline_k11")}
    same = {k: matches(k) for k in ("k5", "k11")}
    print(
        f"protected / baseline: {ratios['k5']} (k=5), {ratios['k11']} (k=11); linked / unlinked (k=5): "
        f"{ratio('linked', 'k5')}; baseline counts the same cells and primaries: {same['k5']} (k=5), "
        f"{same['k11']} (k=11); process maxrss {maxrss_mib:.0f} MiB"
    )

    figures: dict[str, object] = {
        "benchmark": "stats",
        "events": events,
        "cases": len(states),
        "months": len(whole.months),
        "generate_seconds": round(generating, 1),
        "fold_seconds": round(folding, 1),
        "maxrss_mib": round(maxrss_mib, 1),
        "ratio_k5": ratios["k5"],
        "ratio_k11": ratios["k11"],
        "ratio_linked_k5": ratio("linked", "k5"),
        "baseline_matches": same["k5"] is not False and same["k11"] is not False,
    }
    for name, result in results.items():
        if isinstance(result, Failed):
            figures |= {f"{name}_seconds": round(result.seconds, 3), f"{name}_failed": result.error}
            continue
        check = result.check
        figures |= {
            f"{name}_seconds": round(result.seconds, 3),
            f"{name}_peak_mib": round(result.peak_mib, 1),
            f"{name}_cells": check.cells,
            f"{name}_withheld": check.withheld,
            f"{name}_primary": check.primary,
            f"{name}_secondary": check.secondary,
            f"{name}_share_primary": round(check.primary / max(check.cells, 1), 5),
            f"{name}_share_secondary": round(check.secondary / max(check.cells, 1), 5),
            f"{name}_narrowest": check.narrowest,
            f"{name}_rounds": check.rounds,
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
