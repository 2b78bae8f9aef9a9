"""The safety rules of the regional statistics, per deployment (``config/statistics.yaml``).

Every publication states the rules it was made under, so a reader knows what a withheld cell means.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.errors import ConfigError


class Dimension(StrEnum):
    PERIOD = "period"  # month or quarter of identification
    CORRIDOR = "corridor"  # the agreement joining host and home, or HOST->HOME
    EXPLOITATION = "exploitation"  # form of exploitation (a person may have several)
    LABOUR_SECTOR = "labour_sector"  # sector of labour exploitation (a person may have several)
    SEX = "sex"
    AGE_BAND = "age_band"
    AGENCY_TYPE = "agency_type"  # the type of agency that identified the person


#: The order of the dimensions in keys and flat rows.
DIMENSIONS: tuple[Dimension, ...] = tuple(Dimension)
#: Dimensions on which one person may take several values: their parts add up to at least the total.
MULTI_VALUED: frozenset[Dimension] = frozenset({Dimension.EXPLOITATION, Dimension.LABOUR_SECTOR})


class PeriodUnit(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


class TableRule(BaseModel):
    """People by ``rows`` (one or more dimensions) and one ``column`` dimension, with the row and
    column totals and the grand total."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    rows: tuple[Dimension, ...] = Field(min_length=1)
    column: Dimension

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if len({*self.rows, self.column}) != len(self.rows) + 1:
            raise ValueError(f"table {self.name}: a dimension appears twice")
        return self

    @property
    def dimensions(self) -> frozenset[Dimension]:
        return frozenset((*self.rows, self.column))


class MedianRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: a median of fewer cases is withheld (None: the minimum frequency)
    minimum_cases: int | None = Field(default=None, ge=2)
    #: a median is withheld when one number of days is shared by more than this share of its cases:
    #: publishing it would tell nearly everyone's value (the (1, k) dominance rule applied to values)
    dominance: float = Field(default=0.8, gt=0, le=1)


def _default_tables() -> tuple[TableRule, ...]:
    """Each dimension by corridor: what the region asks for, without crossing small groups further."""
    titles = {
        Dimension.PERIOD: "People identified by corridor and period",
        Dimension.EXPLOITATION: "People by corridor and form of exploitation",
        Dimension.LABOUR_SECTOR: "People by corridor and labour sector",
        Dimension.SEX: "People by corridor and sex",
        Dimension.AGE_BAND: "People by corridor and age band",
        Dimension.AGENCY_TYPE: "People by corridor and identifying agency",
    }
    return tuple(
        TableRule(name=f"by_{column.value}", title=title, rows=(Dimension.CORRIDOR,), column=column)
        for column, title in titles.items()
    )


def _all_crossings() -> dict[Dimension, tuple[Dimension, ...]]:
    return {dimension: tuple(other for other in DIMENSIONS if other != dimension) for dimension in DIMENSIONS}


class StatisticsRules(BaseModel):
    """The rules one publication is made under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = 1
    #: a count of fewer people (or cases) is withheld; CTDC publishes record-level data at k = 11
    minimum_frequency: int = Field(default=5, ge=2)
    #: how wide the range a reader can deduce for a withheld count must be (None: the minimum frequency)
    protection: int | None = Field(default=None, ge=1)
    #: published counts are rounded down to a multiple of this (1: exact)
    rounding_base: int = Field(default=1, ge=1)
    period: PeriodUnit = PeriodUnit.MONTH
    medians: MedianRule = MedianRule()
    #: which dimensions may be crossed with which in one table (symmetric)
    crossings: dict[Dimension, tuple[Dimension, ...]] = Field(default_factory=_all_crossings)
    tables: tuple[TableRule, ...] = Field(default_factory=_default_tables, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.rounding_base > self.minimum_frequency:
            raise ValueError(
                f"rounding_base {self.rounding_base} is above minimum_frequency {self.minimum_frequency}: "
                "published counts would round to zero"
            )
        names = [table.name for table in self.tables]
        if len(set(names)) != len(names):
            raise ValueError("tables: two tables have the same name")
        for table in self.tables:
            dimensions = sorted(table.dimensions)
            for index, first in enumerate(dimensions):
                for second in dimensions[index + 1 :]:
                    if not self.may_cross(first, second):
                        raise ValueError(f"table {table.name}: crossings do not allow {first} with {second}")
        return self

    def may_cross(self, first: Dimension, second: Dimension) -> bool:
        return second in self.crossings.get(first, ()) or first in self.crossings.get(second, ())

    @property
    def protection_level(self) -> int:
        return self.protection if self.protection is not None else self.minimum_frequency

    @property
    def median_minimum(self) -> int:
        minimum = self.medians.minimum_cases
        return minimum if minimum is not None else self.minimum_frequency

    def table(self, name: str) -> TableRule:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


DEFAULT_RULES = StatisticsRules()


def load_rules(path: Path | None) -> StatisticsRules:
    """The rules in ``path`` (YAML); the defaults when ``path`` is None. Errors name the field."""
    if path is None:
        return DEFAULT_RULES
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return StatisticsRules.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
