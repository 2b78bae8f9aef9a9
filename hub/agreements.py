"""Bilateral agreements (MoUs, SOPs) and the focal-point directory, as configuration.

``config/agreements.yaml`` says which corridors exist and, for each direction, which event types may
flow and which data categories are granted (everything else is removed when routing), the deadlines,
the Case Management Meeting cadence and the working languages. ``config/directory.yaml`` names each
country's focal-point agencies, their languages and their alert channels. Errors name the file, the key
and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.contract import AgencyType, CountryCode, DataCategory, EventType, LanguageCode
from hub.errors import ConfigError
from hub.validation import first_error


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Deadlines(_Config):
    """Agreed times, in calendar days unless named otherwise."""

    acknowledge_days: int = Field(ge=0, description="From a referral to its acknowledgement.")
    answer_days: int = Field(ge=0, description="From a referral to acceptance or decline.")
    return_notice_days: int = Field(ge=0, description="Notice required before the planned return.")
    return_after_acceptance_days: int = Field(
        ge=0, description="From acceptance to the return notice; later is a delayed repatriation."
    )
    handover_after_return_days: int = Field(ge=0, description="Handover due after the planned return.")
    follow_up_months: tuple[int, ...] = Field(default=(3, 6, 12), min_length=1)


class CaseManagementMeetings(_Config):
    cadence_months: int = Field(ge=1, le=24)
    level: Literal["national", "provincial", "border"] = "national"
    languages: tuple[LanguageCode, ...] = Field(min_length=1)


class DirectionTerms(_Config):
    """What one country may send the other under the agreement."""

    event_types: frozenset[EventType] = Field(min_length=1)
    grants: frozenset[DataCategory] = Field(min_length=1)
    #: Categories sealed under the case's data key in addition to PersonalIdentity (hub/crypto/policy.py).
    sensitive: frozenset[DataCategory] = frozenset()

    @model_validator(mode="after")
    def _case_core_is_the_minimum(self) -> DirectionTerms:
        if DataCategory.CaseCore not in self.grants:
            raise ValueError("grants must include CaseCore: no exchange works without it")
        if DataCategory.CaseCore in self.sensitive:
            raise ValueError("sensitive cannot include CaseCore: the hub routes on it")
        if EventType.Unknown in self.event_types:
            raise ValueError("event_types cannot include Unknown")
        return self


class Corridor(_Config):
    id: str = Field(pattern=r"^[A-Z]{2}-[A-Z]{2}$")
    countries: tuple[CountryCode, CountryCode]
    instrument: str = Field(min_length=1, description="The MoU or SOP the corridor rests on.")
    signed: date | None = None
    languages: tuple[LanguageCode, ...] = Field(min_length=1)
    deadlines: Deadlines
    cmm: CaseManagementMeetings
    directions: dict[str, DirectionTerms]
    #: Days after a case's closure until its personal data keys are destroyed (``lintas keys expire``).
    retention_days: int = Field(default=730, ge=1)

    @model_validator(mode="after")
    def _directions_are_between_the_two_countries(self) -> Corridor:
        a, b = (country.value for country in self.countries)
        if a == b:
            raise ValueError("a corridor joins two different countries")
        if self.id != f"{a}-{b}":
            raise ValueError(f"id must be '{a}-{b}', the two countries in order")
        allowed = {f"{a}->{b}", f"{b}->{a}"}
        unknown = set(self.directions) - allowed
        if unknown:
            raise ValueError(
                f"directions {sorted(unknown)} are not between {a} and {b}; use {sorted(allowed)}"
            )
        if not self.directions:
            raise ValueError("at least one direction is required")
        return self


class Agreements(_Config):
    corridors: tuple[Corridor, ...]

    @field_validator("corridors")
    @classmethod
    def _one_corridor_per_pair(cls, corridors: tuple[Corridor, ...]) -> tuple[Corridor, ...]:
        seen: set[frozenset[CountryCode]] = set()
        for corridor in corridors:
            pair = frozenset(corridor.countries)
            if pair in seen:
                raise ValueError(f"corridor {corridor.id} is defined twice")
            seen.add(pair)
        return corridors

    def corridor(self, a: str, b: str) -> Corridor | None:
        """The corridor joining two countries, in either order."""
        for corridor in self.corridors:
            if {country.value for country in corridor.countries} == {a, b}:
                return corridor
        return None

    def terms(self, source: str, destination: str) -> DirectionTerms | None:
        """What ``source`` may send ``destination``; ``None`` when no agreement covers it."""
        corridor = self.corridor(source, destination)
        if corridor is None:
            return None
        return corridor.directions.get(f"{source}->{destination}")


#: What a webhook channel can carry: the focal point's alerts, and what partners sent to its inbox.
WebhookFeed = Literal["alerts", "inbox"]


class AlertChannel(_Config):
    kind: Literal["kafka", "webhook", "email", "sse"]
    target: str = Field(min_length=1)
    language: LanguageCode | None = None
    #: A webhook subscription's stable id; ``<agency_id>:<index of the channel>`` when unset.
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,80}$")
    #: Which feeds a webhook carries (connectors/webhooks).
    feeds: frozenset[WebhookFeed] = Field(default=frozenset({"alerts", "inbox"}), min_length=1)
    #: Where a webhook's signing secret is found, never the secret itself: ``env:VAR`` or ``file:/path``.
    secret: str | None = Field(default=None, pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+)$")

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> AlertChannel:
        if self.kind == "webhook":
            if self.secret is None:
                raise ValueError("a webhook needs secret: env:VAR_NAME or file:/path of its signing secret")
            if not self.target.startswith(("https://", "http://")):
                raise ValueError("a webhook's target must be an https:// URL")
        elif self.secret is not None or self.id is not None:
            raise ValueError(f"secret and id are for webhooks, not {self.kind} channels")
        return self


class FocalPoint(_Config):
    agency_id: str = Field(pattern=r"^[A-Z]{2}-[A-Za-z0-9._-]{1,40}$")
    name: str = Field(min_length=1)
    agency_type: AgencyType
    languages: tuple[LanguageCode, ...] = Field(min_length=1)
    alert_channels: tuple[AlertChannel, ...] = ()


class SigningTerms(_Config):
    #: The national system still publishes contract v1 events: the hub may convert them into
    #: sections, seal and sign them on its behalf (with the hub's key, named as the signer).
    hub_signs_v1: bool = False


class CountryEntry(_Config):
    country: CountryCode
    languages: tuple[LanguageCode, ...] = Field(min_length=1)
    focal_points: tuple[FocalPoint, ...] = Field(min_length=1)
    signing: SigningTerms = SigningTerms()

    @property
    def hub_signs_v1(self) -> bool:
        return self.signing.hub_signs_v1


class Directory(_Config):
    countries: tuple[CountryEntry, ...]

    def entry(self, country: str) -> CountryEntry | None:
        for entry in self.countries:
            if entry.country.value == country:
                return entry
        return None


def config_root() -> Path:
    return Path(__file__).resolve().parent.parent / "config"


_Model = TypeVar("_Model", bound=BaseModel)


def _load(path: Path, model: type[_Model]) -> _Model:
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        key, reason = first_error(exc)
        raise ConfigError(f"{path}: {key}: {reason}") from exc


def load_agreements(path: Path | None = None) -> Agreements:
    return _load(path or config_root() / "agreements.yaml", Agreements)


def load_directory(path: Path | None = None, *, agreements: Agreements | None = None) -> Directory:
    """The directory; with ``agreements``, every country of a corridor must be listed in it."""
    source = path or config_root() / "directory.yaml"
    directory = _load(source, Directory)
    if agreements is not None:
        for corridor in agreements.corridors:
            for country in corridor.countries:
                if directory.entry(country.value) is None:
                    raise ConfigError(
                        f"{source}: countries: no entry for {country.value}, "
                        f"a party to corridor {corridor.id}"
                    )
    return directory


@cache
def default_agreements() -> Agreements:
    return load_agreements()
