"""Sends due outbox rows to their receivers, signed, and records each attempt (the HTTP adapter).

Every attempt resolves the receiver's host, checks each address against the policy (:mod:`.ssrf`) and
connects to the address it checked, so a name that changes its answer between check and connection
(DNS rebinding) cannot reach the hub's own network. Redirects are never followed: a 3xx is a failed
attempt.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

import httpx
import structlog

from connectors.webhooks.backoff import Random, after_attempt
from connectors.webhooks.outbox import Attempt, Outbox, Pending
from connectors.webhooks.signing import signed_headers
from connectors.webhooks.ssrf import (
    IPAddress,
    ReceiverPolicy,
    Target,
    UnsafeReceiver,
    check_receiver,
    literal_address,
    parse_target,
)
from connectors.webhooks.subscriptions import Subscription

log = structlog.get_logger("lintas.webhooks")

USER_AGENT: Final = "Lintas-Webhooks/1"
#: Public https receivers only: what a deployment gets unless it allows more.
STRICT: Final = ReceiverPolicy()
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]
Publisher = Callable[[Sequence[Attempt]], Awaitable[None]]


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to now."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = literal_address(str(sockaddr[0]).split("%", 1)[0])
        if address is not None and address not in found:
            found.append(address)
    return found


def client(timeout: float) -> httpx.AsyncClient:
    """The receivers' HTTP client: redirects are never followed, every phase has a timeout."""
    return httpx.AsyncClient(
        follow_redirects=False,
        timeout=httpx.Timeout(timeout),
        trust_env=False,  # a proxy from the environment would bypass the address check
        headers={"user-agent": USER_AGENT},
    )


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        subscriptions: Sequence[Subscription],
        secrets: Mapping[str, str],
        *,
        http: httpx.AsyncClient,
        clock: Callable[[], datetime],
        rng: Random,
        policy: ReceiverPolicy = STRICT,
        resolver: Resolver = resolve,
        publish: Publisher | None = None,
        concurrency: int = 16,
    ) -> None:
        missing = [s.id for s in subscriptions if s.id not in secrets]
        if missing:
            raise ValueError(f"secrets: none for subscriptions {', '.join(missing)}")
        self.outbox = outbox
        self.subscriptions = {s.id: s for s in subscriptions}
        self.secrets = secrets
        self.http = http
        self.clock = clock
        self.rng = rng
        self.policy = policy
        self.resolver = resolver
        self.publish = publish
        self._slots = asyncio.Semaphore(concurrency)

    async def dispatch_due(self, limit: int = 100) -> int:
        """One attempt for each row due now (at most ``limit``); returns how many were made."""
        disabled = self.outbox.disabled()
        due = [
            row
            for row in self.outbox.due(self.clock(), limit)
            if row.subscription_id in self.subscriptions and row.subscription_id not in disabled
        ]
        await asyncio.gather(*(self._attempt(row) for row in due))
        await self.publish_log()
        return len(due)

    async def publish_log(self) -> None:
        """Attempts not yet on the delivery log topic, then marked as published (at least once)."""
        if self.publish is None:
            return
        attempts = self.outbox.unpublished()
        if attempts:
            await self.publish(attempts)
            self.outbox.mark_published(attempts)

    async def _attempt(self, row: Pending) -> None:
        subscription = self.subscriptions[row.subscription_id]
        async with self._slots:
            at = self.clock()
            started = time.perf_counter()
            status_code, error = await self._send(subscription, row, at)
            latency_ms = (time.perf_counter() - started) * 1000
        verdict = after_attempt(
            status_code,
            round_attempt=row.round_attempts + 1,
            first_attempt_at=row.first_attempt_at or at,
            now=at,
            rng=self.rng,
        )
        self.outbox.record(
            row, status_code=status_code, error=error, latency_ms=latency_ms, at=at, verdict=verdict
        )
        log.info(
            "webhook_attempted",
            webhook_id=row.webhook_id,
            subscription=row.subscription_id,
            attempt=row.attempts + 1,
            status_code=status_code,
            error=error,
            state=verdict.state,
            next_attempt_at=verdict.next_attempt_at.isoformat() if verdict.next_attempt_at else None,
        )
        if verdict.state == "disabled":
            log.warning("webhook_subscription_disabled", subscription=row.subscription_id, status_code=410)

    async def _send(
        self, subscription: Subscription, row: Pending, at: datetime
    ) -> tuple[int | None, str | None]:
        """The receiver's status code, or the reason there is none."""
        try:
            target = parse_target(subscription.url, self.policy)
            literal = literal_address(target.host)
            addresses = [literal] if literal is not None else await self.resolver(target.host, target.port)
            check_receiver(subscription.url, addresses, self.policy)
        except UnsafeReceiver as exc:
            return None, f"unsafe_receiver: {exc}"
        except OSError as exc:
            return None, f"unresolved: {exc.strerror or exc}"
        headers = {
            **signed_headers(self.secrets[subscription.id], row.webhook_id, at, row.body),
            "content-type": "application/json",
        }
        request = _pinned(self.http, subscription.url, target, addresses[0], headers, row.body)
        try:
            response = await self.http.send(request)
            await response.aclose()
        except httpx.TimeoutException:
            return None, "timeout"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None if response.is_success else _reason(response)


def _reason(response: httpx.Response) -> str:
    if response.is_redirect:
        return "redirect not followed"
    return f"HTTP {response.status_code}"


def _pinned(
    http: httpx.AsyncClient,
    url: str,
    target: Target,
    address: IPAddress,
    headers: Mapping[str, str],
    body: bytes,
) -> httpx.Request:
    """A POST to ``url`` connected to ``address``: the Host header and the TLS server name (SNI, and
    so certificate verification) stay the URL's host."""
    original = httpx.URL(url)
    pinned = original.copy_with(host=str(address))
    host = original.netloc.decode("ascii")
    request = http.build_request("POST", pinned, content=body, headers={**headers, "host": host})
    if target.scheme == "https" and literal_address(target.host) is None:
        request.extensions["sni_hostname"] = target.host
    return request
