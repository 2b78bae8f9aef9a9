"""The shipped agreements and directory load and hang together; bad configuration gives a clear error.

Every ConfigError names the file, the key path and the reason, so the tests on bad files check all three.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.agreements import Agreements, Directory, load_agreements, load_directory
from hub.contract import DataCategory, EventType
from hub.errors import ConfigError

Document = dict[str, Any]

#: What a country that answers a referral must be able to send back to the country that made it.
ANSWERS = {EventType.ReferralAcknowledged, EventType.ReferralAnswered, EventType.HandoverCompleted}


@pytest.fixture(scope="module")
def agreements() -> Agreements:
    return load_agreements()


@pytest.fixture(scope="module")
def directory(agreements: Agreements) -> Directory:
    return load_directory(agreements=agreements)


def minimal_corridor() -> Document:
    """A valid Thailand–Myanmar corridor with one direction, to break one key at a time."""
    return {
        "id": "TH-MM",
        "countries": ["TH", "MM"],
        "instrument": "MoU between Thailand and Myanmar (2009)",
        "languages": ["th", "my", "en"],
        "deadlines": {
            "acknowledge_days": 7,
            "answer_days": 30,
            "return_notice_days": 15,
            "return_after_acceptance_days": 60,
            "handover_after_return_days": 1,
        },
        "cmm": {"cadence_months": 6, "languages": ["th", "my"]},
        "directions": {"TH->MM": {"event_types": ["VictimIdentified"], "grants": ["CaseCore"]}},
    }


def minimal_agreements() -> Document:
    return {"corridors": [minimal_corridor()]}


def write_yaml(path: Path, document: Document) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def config_error(load: Callable[[], object]) -> str:
    with pytest.raises(ConfigError) as caught:
        load()
    return str(caught.value)


def test_shipped_agreements_and_directory_load_together(agreements: Agreements, directory: Directory) -> None:
    parties = {country.value for corridor in agreements.corridors for country in corridor.countries}

    listed = {entry.country.value for entry in directory.countries}

    assert parties <= listed


def test_shipped_agreements_have_the_required_corridors(agreements: Agreements) -> None:
    required = {"TH-MM", "TH-LA", "TH-KH", "KH-VN", "VN-CN", "LA-CN", "MM-CN", "MY-ID", "MY-PH", "JP-PH"}

    shipped = {corridor.id for corridor in agreements.corridors}

    assert required <= shipped


def test_every_corridor_has_both_directions(agreements: Agreements) -> None:
    for corridor in agreements.corridors:
        a, b = (country.value for country in corridor.countries)

        directions = set(corridor.directions)

        assert directions == {f"{a}->{b}", f"{b}->{a}"}, corridor.id


def test_every_direction_grants_case_core(agreements: Agreements) -> None:
    for corridor in agreements.corridors:
        for name, terms in corridor.directions.items():
            grants = terms.grants

            assert DataCategory.CaseCore in grants, f"{corridor.id} {name}"


def test_a_country_that_receives_referrals_can_answer_them(agreements: Agreements) -> None:
    for corridor in agreements.corridors:
        for name, terms in corridor.directions.items():
            source, destination = name.split("->")
            if EventType.ReferralRequested not in terms.event_types:
                continue

            answer = agreements.terms(destination, source)

            assert answer is not None, f"{corridor.id}: {destination} cannot answer {source}"
            assert answer.event_types >= ANSWERS, f"{corridor.id} {destination}->{source}"


def test_terms_exist_both_ways_between_thailand_and_myanmar(agreements: Agreements) -> None:
    pair = ("TH", "MM")

    there, back = agreements.terms(*pair), agreements.terms(*reversed(pair))

    assert there is not None
    assert back is not None
    assert EventType.VictimIdentified in there.event_types
    assert EventType.ReferralAcknowledged in back.event_types


def test_terms_are_none_where_no_corridor_exists(agreements: Agreements) -> None:
    pair = ("TH", "PH")

    terms = agreements.terms(*pair)

    assert terms is None
    assert agreements.corridor(*pair) is None


@pytest.mark.parametrize(
    ("corridor_id", "cadence_months"),
    [pytest.param("TH-MM", 6, id="thailand-myanmar"), pytest.param("TH-LA", 3, id="thailand-lao")],
)
def test_case_management_meeting_cadence(
    agreements: Agreements, corridor_id: str, cadence_months: int
) -> None:
    a, b = corridor_id.split("-")

    corridor = agreements.corridor(a, b)

    assert corridor is not None
    assert corridor.cmm.cadence_months == cadence_months


def test_directory_agencies_belong_to_their_country_and_alert_on_example_domains(
    directory: Directory,
) -> None:
    for entry in directory.countries:
        code = entry.country.value
        for focal_point in entry.focal_points:
            channels = {channel.kind: channel.target for channel in focal_point.alert_channels}

            assert focal_point.agency_id.startswith(f"{code}-"), focal_point.agency_id
            assert channels.get("kafka") == f"lintas.alerts.{code.lower()}", focal_point.agency_id
            for kind in ("email", "webhook"):
                if kind in channels:
                    assert f"{code.lower()}.example" in channels[kind], channels[kind]


def test_directory_agency_ids_are_unique(directory: Directory) -> None:
    ids = [point.agency_id for entry in directory.countries for point in entry.focal_points]

    duplicates = {agency_id for agency_id in ids if ids.count(agency_id) > 1}

    assert not duplicates


def _direction_to_a_third_country(document: Document) -> None:
    directions = document["corridors"][0]["directions"]
    directions["TH->CN"] = directions["TH->MM"]


def _grants_without_case_core(document: Document) -> None:
    document["corridors"][0]["directions"]["TH->MM"]["grants"] = ["PersonalIdentity", "Health"]


def _unknown_event_type(document: Document) -> None:
    document["corridors"][0]["directions"]["TH->MM"]["event_types"] = ["VictimFound"]


def _negative_deadline(document: Document) -> None:
    document["corridors"][0]["deadlines"]["answer_days"] = -1


@pytest.mark.parametrize(
    ("breakage", "key", "reason"),
    [
        pytest.param(
            _direction_to_a_third_country,
            "corridors.0",
            "directions ['TH->CN'] are not between TH and MM",
            id="direction-to-third-country",
        ),
        pytest.param(
            _grants_without_case_core,
            "corridors.0.directions.TH->MM",
            "grants must include CaseCore",
            id="grants-without-case-core",
        ),
        pytest.param(
            _unknown_event_type,
            "corridors.0.directions.TH->MM.event_types.0",
            "unknown code 'VictimFound'",
            id="unknown-event-type",
        ),
        pytest.param(
            _negative_deadline,
            "corridors.0.deadlines.answer_days",
            "greater than or equal to 0",
            id="negative-deadline",
        ),
    ],
)
def test_bad_corridor_is_reported_with_file_key_and_reason(
    tmp_path: Path, breakage: Callable[[Document], None], key: str, reason: str
) -> None:
    document = minimal_agreements()
    breakage(document)
    path = write_yaml(tmp_path / "agreements.yaml", document)

    message = config_error(lambda: load_agreements(path))

    assert message.startswith(f"{path}: {key}: "), message
    assert reason in message


def test_duplicate_corridor_is_reported_with_file_and_reason(tmp_path: Path) -> None:
    document = minimal_agreements()
    document["corridors"].append(copy.deepcopy(document["corridors"][0]))
    path = write_yaml(tmp_path / "agreements.yaml", document)

    message = config_error(lambda: load_agreements(path))

    assert message.startswith(f"{path}: "), message
    assert "corridor TH-MM is defined twice" in message


def test_duplicate_corridor_names_the_corridors_key(tmp_path: Path) -> None:
    document = minimal_agreements()
    document["corridors"].append(copy.deepcopy(document["corridors"][0]))
    path = write_yaml(tmp_path / "agreements.yaml", document)

    message = config_error(lambda: load_agreements(path))

    assert message.startswith(f"{path}: corridors"), message


def test_invalid_yaml_is_reported_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "agreements.yaml"
    path.write_text("corridors: [\n  - id: TH-MM\n", encoding="utf-8")

    message = config_error(lambda: load_agreements(path))

    assert message.startswith(f"{path}: not valid YAML: "), message
    assert "line 2" in message


def test_missing_file_is_reported_with_file_and_reason(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    message = config_error(lambda: load_agreements(path))

    assert message.startswith(f"{path}: cannot be read: "), message
    assert "No such file or directory" in message


def test_directory_missing_a_corridor_party_is_reported(tmp_path: Path) -> None:
    agreements = load_agreements(write_yaml(tmp_path / "agreements.yaml", minimal_agreements()))
    thailand_only = {
        "countries": [
            {
                "country": "TH",
                "languages": ["th"],
                "focal_points": [
                    {
                        "agency_id": "TH-DSDW",
                        "name": "Division of Anti-Trafficking in Persons",
                        "agency_type": "SocialWelfare",
                        "languages": ["th"],
                    }
                ],
            }
        ]
    }
    path = write_yaml(tmp_path / "directory.yaml", thailand_only)

    message = config_error(lambda: load_directory(path, agreements=agreements))

    assert message.startswith(f"{path}: countries: "), message
    assert "no entry for MM, a party to corridor TH-MM" in message
