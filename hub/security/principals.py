"""Who may do what on the hub's Kafka: the principals (SCRAM users) and the ACLs each needs.

Pure: no Kafka, no I/O. :func:`layout` gives every ACL binding the hub's principals need for a set of
countries, and nothing more; :func:`diff` says what to create and delete to get there, so applying
the layout twice changes nothing the second time. Topic names come from :mod:`hub.topics`.

What each principal needs was read from the code that runs under it:

* ``router`` (``hub/worker.py`` on ``hub/processor.py``): consumes the national events topics by
  pattern in group ``lintas-router`` (Describe to see them, Read to consume), writes receipts,
  inboxes, dead letters and the accepted log in transactions ``lintas-router-<instance>`` and asks
  for those topics' ``max.message.bytes`` (DescribeConfigs); reads and writes its changelog and the
  claims of event ids, which it reads back with assigned consumers in groups
  ``lintas-ids-<pid>`` and restores in ``lintas-restore-<pid>``.
* ``alerts`` (``projections/alerts/worker.py``): consumes the accepted log in group
  ``lintas-alerts``, writes every country's alerts and its changelog in transactions
  ``lintas-alerts-<instance>``, restores in ``lintas-restore-<pid>``.
* ``projector`` (``connectors/readstore/projector.py``): reads the accepted log, the audit log, the
  published statistics and every country's receipts, inbox and alerts, by assignment (no group).
* ``api`` (``connectors/api/server.py``): publishes national events of any country on behalf of the
  national systems (idempotent, and in transactions ``lintas-api-<hex>`` for batches), writes the
  audit log, and runs the projector in its process.
* ``webhooks`` (``connectors/webhooks/worker.py``): reads alerts and inboxes by assignment, writes
  the delivery log.
* ``stats`` (``projections/stats/kafka.py``, ``lintas stats --publish``): reads the accepted log
  and the publications, publishes to ``lintas.regional.stats``.
* ``nrm-<cc>``, a country's national system: publishes its events, reads its receipts in a group of
  its own prefix.
* ``fp-<cc>``, a country's focal point: reads its inbox and its alerts in a group of its own prefix.
* ``operator``: the super user made when the cluster is formatted; it applies everyone else's ACLs
  and needs none.

Since Kafka 3.0 an idempotent producer needs no ``IdempotentWrite`` on the cluster: ``Write`` on any
topic is enough (KIP-679), so no principal gets a cluster ACL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from hub import topics
from hub.errors import LintasError

__all__ = [
    "OPERATOR",
    "Binding",
    "Operation",
    "PatternType",
    "Principal",
    "ResourceType",
    "Role",
    "SecurityError",
    "diff",
    "is_managed",
    "layout",
    "managed_principals",
    "normalise_countries",
    "permits",
    "principal",
    "principals",
    "render_table",
]

#: The super user created when the cluster is formatted (``hub.broker.config.OPERATOR``).
OPERATOR = "operator"


class SecurityError(LintasError):
    """A principal or its credentials could not be managed: names the principal and Kafka's reason."""

    def __init__(self, principal: str, reason: str) -> None:
        self.principal = principal
        self.reason = reason
        super().__init__(f"principal {principal!r}: {reason}")


class ResourceType(StrEnum):
    TOPIC = "TOPIC"
    GROUP = "GROUP"
    TRANSACTIONAL_ID = "TRANSACTIONAL_ID"
    CLUSTER = "CLUSTER"


class PatternType(StrEnum):
    LITERAL = "LITERAL"
    PREFIXED = "PREFIXED"


class Operation(StrEnum):
    READ = "READ"
    WRITE = "WRITE"
    CREATE = "CREATE"
    DELETE = "DELETE"
    ALTER = "ALTER"
    DESCRIBE = "DESCRIBE"
    CLUSTER_ACTION = "CLUSTER_ACTION"
    DESCRIBE_CONFIGS = "DESCRIBE_CONFIGS"
    ALTER_CONFIGS = "ALTER_CONFIGS"
    IDEMPOTENT_WRITE = "IDEMPOTENT_WRITE"
    ALL = "ALL"


class Role(StrEnum):
    OPERATOR = "operator"
    ROUTER = "router"
    ALERTS = "alerts"
    PROJECTOR = "projector"
    API = "api"
    WEBHOOKS = "webhooks"
    STATS = "stats"
    NATIONAL_SYSTEM = "national-system"
    FOCAL_POINT = "focal-point"


@dataclass(frozen=True, order=True)
class Binding:
    """One ACL: ``principal`` (a SCRAM user name, ``User:<principal>`` to Kafka) may ``operation`` on
    the resource. Ordered by its fields, in this order: a sorted layout reads principal by principal."""

    principal: str
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    operation: Operation
    permission: str = "ALLOW"
    host: str = "*"

    @property
    def kafka_principal(self) -> str:
        return f"User:{self.principal}"

    def matches(self, resource_type: ResourceType, name: str) -> bool:
        """Whether this binding's resource pattern covers the resource ``name``."""
        if resource_type != self.resource_type:
            return False
        if self.pattern_type is PatternType.PREFIXED:
            return name.startswith(self.resource_name)
        return name == self.resource_name


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    country: str | None
    description: str


# -- the principals -------------------------------------------------------------------------------

ROUTER, ALERTS, PROJECTOR, API, WEBHOOKS, STATS = "router", "alerts", "projector", "api", "webhooks", "stats"

#: Consumer groups and transactional-id families of the hub's workers (see the module docstring).
ROUTER_GROUP = "lintas-router"
ALERTS_GROUP = "lintas-alerts"
ROUTER_TRANSACTIONS = f"{ROUTER_GROUP}-"
ALERTS_TRANSACTIONS = f"{ALERTS_GROUP}-"
API_TRANSACTIONS = "lintas-api-"
#: Assigned consumers of the processor (``lintas-ids-<pid>``, ``lintas-restore-<pid>``): a group id
#: is set, so librdkafka looks up their coordinator (FindCoordinator needs Describe on the group;
#: without it they fail with GROUP_AUTHORIZATION_FAILED), but they never join or commit: no Read.
IDS_GROUPS = "lintas-ids-"
RESTORE_GROUPS = "lintas-restore-"

_FIXED: tuple[tuple[str, Role, str], ...] = (
    (OPERATOR, Role.OPERATOR, "super user made when the cluster is formatted; applies everyone's ACLs"),
    (ROUTER, Role.ROUTER, "the router workers (lintas worker)"),
    (ALERTS, Role.ALERTS, "the alert workers (lintas alerts)"),
    (PROJECTOR, Role.PROJECTOR, "the read-store projector run on its own (lintas replay --into)"),
    (API, Role.API, "the HTTP API process and the projector inside it (lintas api)"),
    (WEBHOOKS, Role.WEBHOOKS, "the webhook delivery worker (lintas webhooks run)"),
    (STATS, Role.STATS, "the publisher of the regional statistics (lintas stats --publish)"),
)
_COUNTRY_NAME = re.compile(r"^(nrm|fp)-([a-z]{2})$")


def national_system(country: str) -> str:
    return f"nrm-{country.lower()}"


def focal_point(country: str) -> str:
    return f"fp-{country.lower()}"


def national_groups(country: str) -> str:
    """The prefix of the consumer groups a national system may use (``lintas.nrm.th.``)."""
    return f"lintas.nrm.{country.lower()}."


def focal_groups(country: str) -> str:
    """The prefix of the consumer groups a focal point may use (``lintas.fp.th.``)."""
    return f"lintas.fp.{country.lower()}."


def normalise_countries(countries: Iterable[str]) -> list[str]:
    """Upper-case ISO 3166-1 alpha-2 codes, each once, sorted; a code that is not one is an error."""
    found = sorted({country.upper() for country in countries})
    for country in found:
        topics.nrm_events(country)  # raises ValueError naming the code
    return found


def principals(countries: Iterable[str]) -> list[Principal]:
    """Every principal of the hub for ``countries``: the hub's own, then two per country."""
    found = [Principal(name, role, None, text) for name, role, text in _FIXED]
    for country in normalise_countries(countries):
        found.append(
            Principal(
                national_system(country),
                Role.NATIONAL_SYSTEM,
                country,
                f"{country}'s national system: publishes its events, reads its receipts",
            )
        )
        found.append(
            Principal(
                focal_point(country),
                Role.FOCAL_POINT,
                country,
                f"{country}'s focal point: reads its inbox and its alerts",
            )
        )
    return found


def principal(name: str, countries: Iterable[str]) -> Principal:
    """The principal called ``name``; an unknown name is a :class:`SecurityError`."""
    for candidate in principals(countries):
        if candidate.name == name:
            return candidate
    raise SecurityError(name, "not a principal of this hub (see lintas acl show)")


def is_managed(name: str) -> bool:
    """Whether ``name`` is one of the names the hub gives its principals (whatever the countries):
    ACLs of such a principal that the layout does not want are stale, and removed. The operator is a
    super user and has none to manage."""
    return name in {ROUTER, ALERTS, PROJECTOR, API, WEBHOOKS, STATS} or bool(_COUNTRY_NAME.match(name))


def managed_principals(countries: Iterable[str], current: Iterable[Binding] = ()) -> set[str]:
    """The principals whose ACLs the layout owns: those of ``countries`` (except the operator) and any
    principal of the hub's naming found in ``current`` (a country no longer configured)."""
    names = {p.name for p in principals(countries) if p.role is not Role.OPERATOR}
    return names | {binding.principal for binding in current if is_managed(binding.principal)}


# -- the layout ------------------------------------------------------------------------------------

T, G, X = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED
R, W, D, DC = Operation.READ, Operation.WRITE, Operation.DESCRIBE, Operation.DESCRIBE_CONFIGS


def _grant(
    who: str,
    kind: ResourceType,
    names: Iterable[str],
    operations: Iterable[Operation],
    pattern: PatternType = LIT,
) -> list[Binding]:
    ops = tuple(operations)
    return [Binding(who, kind, name, pattern, op) for name in names for op in ops]


def _reads(who: str, names: Iterable[str]) -> list[Binding]:
    return _grant(who, T, names, (R, D))


def _writes(who: str, names: Iterable[str]) -> list[Binding]:
    return _grant(who, T, names, (W, D))


def _transactions(who: str, prefix: str) -> list[Binding]:
    return _grant(who, X, [prefix], (W, D), PRE)


def _projected(countries: list[str]) -> list[str]:
    # connectors.readstore.projector.projected_topics, without importing the read store here.
    names = [topics.ACCEPTED_EVENTS, topics.AUDIT, topics.REGIONAL_STATS, topics.DEADLETTER]
    for country in countries:
        names += [topics.nrm_receipts(country), topics.focal_inbox(country), topics.alerts(country)]
    return names


def _router(countries: list[str]) -> list[Binding]:
    outputs = [
        *(topics.nrm_receipts(c) for c in countries),
        *(topics.focal_inbox(c) for c in countries),
        topics.DEADLETTER,
        topics.ACCEPTED_EVENTS,
    ]
    return [
        # The pattern subscription sees (Describe) and consumes (Read) the national topics it may.
        *_reads(ROUTER, [topics.nrm_events(c) for c in countries]),
        *_grant(ROUTER, T, outputs, (W, D, DC)),  # DescribeConfigs: each topic's max.message.bytes
        *_grant(ROUTER, T, [topics.ROUTER_STATE, topics.ROUTER_IDS], (R, W, D)),
        *_grant(ROUTER, G, [ROUTER_GROUP], (R,)),
        *_grant(ROUTER, G, [IDS_GROUPS, RESTORE_GROUPS], (D,), PRE),
        *_transactions(ROUTER, ROUTER_TRANSACTIONS),
    ]


def _alerts(countries: list[str]) -> list[Binding]:
    return [
        *_reads(ALERTS, [topics.ACCEPTED_EVENTS]),
        *_writes(ALERTS, [topics.alerts(c) for c in countries]),
        *_grant(ALERTS, T, [topics.PROJECTION_STATE], (R, W, D)),
        *_grant(ALERTS, G, [ALERTS_GROUP], (R,)),
        *_grant(ALERTS, G, [RESTORE_GROUPS], (D,), PRE),
        *_transactions(ALERTS, ALERTS_TRANSACTIONS),
    ]


def _api(countries: list[str]) -> list[Binding]:
    return [
        *_writes(API, [topics.nrm_events(c) for c in countries]),
        *_writes(API, [topics.AUDIT]),
        *_transactions(API, API_TRANSACTIONS),
        *_reads(API, _projected(countries)),
    ]


def _webhooks(countries: list[str]) -> list[Binding]:
    feeds = [name for c in countries for name in (topics.alerts(c), topics.focal_inbox(c))]
    return [*_reads(WEBHOOKS, feeds), *_writes(WEBHOOKS, [topics.WEBHOOK_DELIVERIES])]


def _stats() -> list[Binding]:
    return [
        *_reads(STATS, [topics.ACCEPTED_EVENTS, topics.REGIONAL_STATS]),
        *_writes(STATS, [topics.REGIONAL_STATS]),
    ]


def _country(country: str) -> list[Binding]:
    nrm, fp = national_system(country), focal_point(country)
    return [
        *_writes(nrm, [topics.nrm_events(country)]),
        *_reads(nrm, [topics.nrm_receipts(country)]),
        *_grant(nrm, G, [national_groups(country)], (R,), PRE),
        *_reads(fp, [topics.focal_inbox(country), topics.alerts(country)]),
        *_grant(fp, G, [focal_groups(country)], (R,), PRE),
    ]


def layout(countries: Iterable[str]) -> list[Binding]:
    """Every ACL the hub's principals need for ``countries``, each once, sorted."""
    found = normalise_countries(countries)
    bindings = [
        *_router(found),
        *_alerts(found),
        *_reads(PROJECTOR, _projected(found)),
        *_api(found),
        *_webhooks(found),
        *_stats(),
        *(binding for country in found for binding in _country(country)),
    ]
    return sorted(set(bindings))


def diff(current: set[Binding], wanted: set[Binding], managed: set[str]) -> tuple[set[Binding], set[Binding]]:
    """``(to_create, to_delete)``: the wanted bindings missing from ``current``, and the bindings of
    ``managed`` principals in ``current`` that are not wanted. Others' ACLs are never touched."""
    to_create = wanted - current
    to_delete = {binding for binding in current - wanted if binding.principal in managed}
    return to_create, to_delete


# -- reading a layout ------------------------------------------------------------------------------

#: Operations that imply Describe (and AlterConfigs DescribeConfigs), as Kafka's authorizer has it.
_IMPLIES: Mapping[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset({Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.ALTER_CONFIGS}),
}


def permits(
    bindings: Iterable[Binding], who: str, resource_type: ResourceType, name: str, operation: Operation
) -> bool:
    """Whether ``bindings`` let ``who`` do ``operation`` on the resource ``name`` as Kafka's
    StandardAuthorizer decides (no ACL: refused; a matching DENY wins; ``ALL`` and the implied
    operations count)."""
    granting = {operation, Operation.ALL, *_IMPLIES.get(operation, ())}
    denying = {operation, Operation.ALL}
    hits = [b for b in bindings if b.principal == who and b.host == "*" and b.matches(resource_type, name)]
    if any(b.permission == "DENY" and b.operation in denying for b in hits):
        return False
    return any(b.permission == "ALLOW" and b.operation in granting for b in hits)


def render_table(bindings: Iterable[Binding]) -> str:
    """A Markdown table, one row per principal and resource pattern, its operations together."""
    rows: dict[tuple[str, ResourceType, str, PatternType, str], list[Operation]] = {}
    for b in sorted(set(bindings)):
        rows.setdefault(
            (b.principal, b.resource_type, b.resource_name, b.pattern_type, b.permission), []
        ).append(b.operation)
    lines = [
        "| principal | resource | name | pattern | permission | operations |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (who, kind, name, pattern, permission), operations in rows.items():
        ops = ", ".join(op.value for op in sorted(operations, key=list(Operation).index))
        shown = f"`{name}*`" if pattern is PatternType.PREFIXED else f"`{name}`"
        lines.append(f"| {who} | {kind.value} | {shown} | {pattern.value} | {permission} | {ops} |")
    return "\n".join(lines) + "\n"
