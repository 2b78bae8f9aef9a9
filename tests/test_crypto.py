"""Signatures, sealed sections, the data-key store and the readers policy of contract v2.

Pure: no broker. The Vault store runs only against a real Vault (``VAULT_ADDR`` and ``VAULT_TOKEN``).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import uuid
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.crypto.keystore import (
    DataKey,
    EmbeddedKeyStore,
    KeyNotGranted,
    KeysDestroyed,
    KeyStore,
    NoKey,
    VaultTransitKeyStore,
    open_key_store,
)
from hub.crypto.policy import SEALED_CATEGORIES, is_sealed, readers_of
from hub.crypto.sealing import SealError, open_sealed, seal, section_aad
from hub.crypto.signing import (
    KeyDirectory,
    PublicKey,
    SignatureError,
    Signer,
    default_keys_path,
    demo_directory_yaml,
    demo_signer,
    load_key_directory,
)
from hub.errors import ConfigError

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
MESSAGE = b"envelope and sections of TH-2026-0001"
CASE = "TH-2026-0001"
CATEGORIES = ("CaseCore", "AssistanceNeeds", "Legal", "Health", "PersonalIdentity")
COUNTRIES = ("TH", "MM", "KH", "LA", "VN", "MY")


def flip(data: bytes, bit: int) -> bytes:
    index = (bit // 8) % len(data)
    return data[:index] + bytes([data[index] ^ (1 << (bit % 8))]) + data[index + 1 :]


# -- signatures


def test_sign_verify_round_trip() -> None:
    signer = demo_signer("TH")
    directory = KeyDirectory([signer.public()])
    signature = signer.sign(MESSAGE)
    assert len(signature) == 64
    directory.verify("TH", "th-demo-1", signature, MESSAGE, at=NOW)


@given(bit=st.integers(min_value=0, max_value=10_000), in_signature=st.booleans())
def test_a_flipped_bit_is_a_bad_signature(bit: int, in_signature: bool) -> None:
    signer = demo_signer("MM")
    directory = KeyDirectory([signer.public()])
    signature = signer.sign(MESSAGE)
    message = MESSAGE
    if in_signature:
        signature = flip(signature, bit)
    else:
        message = flip(message, bit)
    with pytest.raises(SignatureError, match="does not match") as caught:
        directory.verify("MM", "mm-demo-1", signature, message, at=NOW)
    assert caught.value.reason == "bad_signature"


def test_a_short_signature_is_a_bad_signature() -> None:
    directory = KeyDirectory([demo_signer("TH").public()])
    with pytest.raises(SignatureError, match="64 bytes") as caught:
        directory.verify("TH", "th-demo-1", b"\x00" * 10, MESSAGE, at=NOW)
    assert caught.value.reason == "bad_signature"


def test_another_signers_signature_does_not_verify() -> None:
    directory = KeyDirectory([demo_signer("TH").public(), demo_signer("MM").public()])
    signature = demo_signer("MM").sign(MESSAGE)
    with pytest.raises(SignatureError) as caught:
        directory.verify("TH", "th-demo-1", signature, MESSAGE, at=NOW)
    assert caught.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("signer", "key_id", "words"),
    [("TH", "th-demo-9", "its keys are th-demo-1"), ("XX", "xx-1", "the signer has no key at all")],
)
def test_unknown_signer_or_key_id(signer: str, key_id: str, words: str) -> None:
    directory = KeyDirectory([demo_signer("TH").public()])
    with pytest.raises(SignatureError, match=words) as caught:
        directory.verify(signer, key_id, demo_signer("TH").sign(MESSAGE), MESSAGE, at=NOW)
    assert caught.value.reason == "unknown_key"
    assert caught.value.signer == signer
    assert caught.value.key_id == key_id


def test_a_key_outside_its_validity_is_unknown() -> None:
    signer = Signer.generate("KH", "kh-2026-1")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 6, 1, tzinfo=UTC)
    directory = KeyDirectory([signer.public(start, end)])
    signature = signer.sign(MESSAGE)
    directory.verify("KH", "kh-2026-1", signature, MESSAGE, at=start)
    for at in (start - timedelta(seconds=1), end, end + timedelta(days=1)):
        with pytest.raises(SignatureError, match="valid from 2026-01-01") as caught:
            directory.verify("KH", "kh-2026-1", signature, MESSAGE, at=at)
        assert caught.value.reason == "unknown_key"


def test_rotation_keeps_old_signatures_verifiable() -> None:
    rotated = datetime(2026, 2, 1, tzinfo=UTC)
    old, new = demo_signer("TH", 1), demo_signer("TH", 2)
    directory = KeyDirectory([old.public(valid_until=rotated), new.public(rotated)])
    before, after = rotated - timedelta(days=3), rotated + timedelta(days=3)
    directory.verify("TH", "th-demo-1", old.sign(MESSAGE), MESSAGE, at=before)
    directory.verify("TH", "th-demo-2", new.sign(MESSAGE), MESSAGE, at=after)
    with pytest.raises(SignatureError) as caught:
        directory.verify("TH", "th-demo-1", old.sign(MESSAGE), MESSAGE, at=after)
    assert caught.value.reason == "unknown_key"
    assert directory.current("TH", before) == old.public(valid_until=rotated)
    assert directory.current("TH", after) == new.public(rotated)
    assert directory.current("MM", after) is None


def test_demo_keys_are_refused_when_not_allowed() -> None:
    real = Signer.generate("TH", "th-2026-1")
    directory = KeyDirectory([demo_signer("TH").public(), real.public()], allow_demo=False)
    with pytest.raises(SignatureError, match="demo key") as caught:
        directory.verify("TH", "th-demo-1", demo_signer("TH").sign(MESSAGE), MESSAGE, at=NOW)
    assert caught.value.reason == "unknown_key"
    directory.verify("TH", "th-2026-1", real.sign(MESSAGE), MESSAGE, at=NOW)
    assert directory.current("TH", NOW) == real.public()


def test_demo_keys_are_deterministic_and_marked() -> None:
    assert demo_signer("VN").public_bytes() == demo_signer("VN").public_bytes()
    assert demo_signer("VN").public_bytes() != demo_signer("VN", 2).public_bytes()
    assert demo_signer("VN").public().demo
    assert demo_signer("HUB").key_id == "hub-demo-1"


def test_committed_keys_file_is_the_generated_one() -> None:
    assert default_keys_path().read_text(encoding="utf-8") == demo_directory_yaml()
    directory = load_key_directory()
    for signer in ("TH", "MM", "KH", "LA", "VN", "CN", "MY", "ID", "PH", "JP", "SG", "BN", "HUB"):
        demo = demo_signer(signer)
        directory.verify(signer, demo.key_id, demo.sign(MESSAGE), MESSAGE, at=NOW)
    strict = load_key_directory(allow_demo=False)
    with pytest.raises(SignatureError):
        strict.verify("TH", "th-demo-1", demo_signer("TH").sign(MESSAGE), MESSAGE, at=NOW)


def keys_file(tmp_path: Path, entry: dict[str, object]) -> Path:
    base: dict[str, object] = {
        "signer": "TH",
        "key_id": "th-2026-1",
        "public_key": base64.b64encode(Signer.generate("TH", "x").public_bytes()).decode(),
        "valid_from": "2026-01-01T00:00:00Z",
    }
    base.update(entry)
    lines = ["keys:", "  - " + "\n    ".join(f"{k}: {v}" for k, v in base.items())]
    path = tmp_path / "keys.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        (
            {"public_key": base64.b64encode(b"short").decode()},
            "keys.0.public_key: an Ed25519 public key is 32",
        ),
        ({"public_key": "not*base64"}, "keys.0.public_key: not valid base64"),
        ({"signer": "Thailand"}, "keys.0.signer"),
        ({"valid_from": "2026-01-01T00:00:00"}, "keys.0.valid_from"),
        ({"valid_until": "2025-01-01T00:00:00Z"}, "valid_until must be after valid_from"),
        ({"colour": "blue"}, "keys.0.colour: field is not part of the contract"),
        (
            {"public_key": base64.b64encode(demo_signer("TH").public_bytes()).decode()},
            "published demo key",
        ),
    ],
)
def test_bad_keys_file_names_key_and_reason(tmp_path: Path, entry: dict[str, object], words: str) -> None:
    path = keys_file(tmp_path, entry)
    with pytest.raises(ConfigError, match=words) as caught:
        load_key_directory(path)
    assert str(path) in str(caught.value)


def test_keys_file_duplicate_key(tmp_path: Path) -> None:
    path = keys_file(tmp_path, {})
    text = path.read_text(encoding="utf-8")
    path.write_text(text + text.removeprefix("keys:\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"keys\.1\.key_id: th-2026-1 of TH is listed twice"):
        load_key_directory(path)


def test_signer_save_and_load(tmp_path: Path) -> None:
    signer = Signer.generate("LA", "la-2026-1")
    path = tmp_path / "la.key"
    signer.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Signer.load(path)
    assert (loaded.signer, loaded.key_id) == ("LA", "la-2026-1")
    assert loaded.public_bytes() == signer.public_bytes()
    KeyDirectory([signer.public()]).verify("LA", "la-2026-1", loaded.sign(MESSAGE), MESSAGE, at=NOW)


def test_signer_load_raw_seed(tmp_path: Path) -> None:
    seed = os.urandom(32)
    path = tmp_path / "la.seed"
    path.write_bytes(seed)
    loaded = Signer.load(path, signer="LA", key_id="la-2026-1")
    assert loaded.public_bytes() == Signer.from_seed("LA", "la-2026-1", seed).public_bytes()


def test_signer_load_without_identity(tmp_path: Path) -> None:
    path = tmp_path / "seed"
    path.write_bytes(os.urandom(32))
    with pytest.raises(ConfigError, match="signer: not in the file"):
        Signer.load(path)


# -- sealing

KEY = bytes(range(32))
FINGERPRINT = bytes.fromhex("0123456789abcdef")
AAD = section_aad("ev-1", CASE, "PersonalIdentity", FINGERPRINT)


@given(plaintext=st.binary(max_size=2000))
def test_seal_open_round_trip(plaintext: bytes) -> None:
    sealed = seal(KEY, plaintext, AAD)
    assert len(sealed) == 12 + len(plaintext) + 16
    assert open_sealed(KEY, sealed, AAD) == plaintext


def test_seal_uses_a_fresh_nonce() -> None:
    assert seal(KEY, b"same", AAD) != seal(KEY, b"same", AAD)


@pytest.mark.parametrize(
    "aad",
    [
        section_aad("ev-2", CASE, "PersonalIdentity", FINGERPRINT),
        section_aad("ev-1", "TH-2026-0002", "PersonalIdentity", FINGERPRINT),
        section_aad("ev-1", CASE, "Health", FINGERPRINT),
        section_aad("ev-1", CASE, "PersonalIdentity", bytes.fromhex("0123456789abcdee")),
    ],
    ids=["event", "case", "category", "schema"],
)
def test_open_with_other_aad_fails(aad: bytes) -> None:
    with pytest.raises(SealError, match="authentication failed"):
        open_sealed(KEY, seal(KEY, b"name: Aung", AAD), aad)


def test_open_with_wrong_key_fails() -> None:
    with pytest.raises(SealError, match="wrong data key"):
        open_sealed(os.urandom(32), seal(KEY, b"name: Aung", AAD), AAD)


@given(bit=st.integers(min_value=0, max_value=(12 + 10 + 16) * 8 - 1))
def test_a_flipped_bit_fails_to_open(bit: int) -> None:
    sealed = seal(KEY, b"name: Aung", AAD)
    with pytest.raises(SealError):
        open_sealed(KEY, flip(sealed, bit), AAD)


@pytest.mark.parametrize("keep", [0, 5, 27, 12 + 10 + 15])
def test_truncated_fails_to_open(keep: int) -> None:
    sealed = seal(KEY, b"name: Aung", AAD)
    with pytest.raises(SealError):
        open_sealed(KEY, sealed[:keep], AAD)


def test_bad_key_size() -> None:
    with pytest.raises(SealError, match="32-byte key, got 16"):
        seal(KEY[:16], b"x", AAD)


@given(
    a=st.tuples(st.text(max_size=5), st.text(max_size=5), st.text(max_size=5), st.binary(max_size=5)),
    b=st.tuples(st.text(max_size=5), st.text(max_size=5), st.text(max_size=5), st.binary(max_size=5)),
)
def test_section_aad_is_unambiguous(a: tuple[str, str, str, bytes], b: tuple[str, str, str, bytes]) -> None:
    assert (section_aad(*a) == section_aad(*b)) == (a == b)
    assert section_aad(*a).startswith(b"lintas/v2/section")


# -- key store


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedKeyStore:
    return EmbeddedKeyStore(tmp_path / "keys.sqlite")


def raw_bytes(store: EmbeddedKeyStore) -> bytes:
    files = [store.path, store.path.with_name(store.path.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


def test_holder_creates_and_gets_the_same_key(store: EmbeddedKeyStore, tmp_path: Path) -> None:
    key = store.data_key(CASE, "TH")
    assert key.version == 1
    assert len(key.key) == 32
    assert store.data_key(CASE, "TH") == key
    assert store.unwrap(CASE, "TH") == key
    # Another process opening the same files.
    other = EmbeddedKeyStore(tmp_path / "keys.sqlite")
    assert other.data_key(CASE, "TH") == key
    assert store.readers(CASE) == frozenset({"TH"})


def test_data_key_repr_hides_the_key() -> None:
    assert repr(DataKey(CASE, 1, b"\xab" * 32)) == "DataKey(case_id='TH-2026-0001', version=1)"


def test_concurrent_first_use_gives_one_key(tmp_path: Path) -> None:
    stores = [EmbeddedKeyStore(tmp_path / "keys.sqlite") for _ in range(6)]
    keys: list[DataKey] = []
    barrier = threading.Barrier(len(stores))

    def take(store: EmbeddedKeyStore) -> None:
        barrier.wait()
        keys.append(store.data_key(CASE, "TH"))

    threads = [threading.Thread(target=take, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == len(stores)
    assert len(set(keys)) == 1


def test_grant(store: EmbeddedKeyStore) -> None:
    key = store.data_key(CASE, "TH")
    with pytest.raises(
        KeyNotGranted, match="country LA is not entitled to the personal data of case"
    ) as caught:
        store.unwrap(CASE, "LA")
    assert (caught.value.case_id, caught.value.country) == (CASE, "LA")
    with pytest.raises(KeyNotGranted):
        store.data_key(CASE, "MM")
    store.grant(CASE, "MM")
    store.grant(CASE, "MM")
    assert store.unwrap(CASE, "MM") == key
    assert store.data_key(CASE, "MM") == key
    assert store.readers(CASE) == frozenset({"TH", "MM"})


def test_no_key(store: EmbeddedKeyStore) -> None:
    with pytest.raises(NoKey, match="no data key yet"):
        store.unwrap(CASE, "TH")
    with pytest.raises(NoKey):
        store.grant(CASE, "MM")
    assert store.readers(CASE) == frozenset()


def test_destroy(store: EmbeddedKeyStore, tmp_path: Path) -> None:
    key = store.data_key(CASE, "TH")
    store.grant(CASE, "MM")
    kept = store.data_key("MM-2026-0007", "MM")
    wrapped = [
        row[0] for row in store._db.execute("SELECT wrapped FROM wrapped_keys WHERE case_id = ?", (CASE,))
    ]
    assert len(wrapped) == 2
    assert all(copy in raw_bytes(store) for copy in wrapped)
    other = EmbeddedKeyStore(tmp_path / "keys.sqlite")
    at = datetime(2026, 3, 4, 9, tzinfo=UTC)

    assert store.destroy(CASE, reason="consent withdrawn", at=at) is True
    assert store.destroy(CASE, reason="again", at=NOW) is False

    tombstone = other.destroyed(CASE)
    assert tombstone is not None
    assert (tombstone.destroyed_at, tombstone.reason) == (at, "consent withdrawn")
    attempts: list[Callable[[], object]] = [
        lambda: store.data_key(CASE, "TH"),
        lambda: store.unwrap(CASE, "MM"),
        lambda: store.grant(CASE, "LA"),
        lambda: other.data_key(CASE, "TH"),
        lambda: other.unwrap(CASE, "TH"),
    ]
    for attempt in attempts:
        with pytest.raises(KeysDestroyed, match="destroyed on 2026-03-04 \\(consent withdrawn\\)") as caught:
            attempt()
        assert caught.value.case_id == CASE
    assert store.readers(CASE) == frozenset()
    raw = raw_bytes(store)
    for copy in wrapped:
        assert copy not in raw
    assert key.key not in raw
    assert store.unwrap("MM-2026-0007", "MM") == kept
    assert store.destroyed("MM-2026-0007") is None


def test_destroy_before_any_key_refuses_later_keys(store: EmbeddedKeyStore) -> None:
    assert store.destroy(CASE, reason="retention ended", at=NOW) is True
    with pytest.raises(KeysDestroyed, match="retention ended"):
        store.data_key(CASE, "TH")


def test_kek_file(store: EmbeddedKeyStore) -> None:
    key = store.data_key(CASE, "TH")
    assert store.kek_path == store.path.with_name("keys.sqlite.kek")
    assert stat.S_IMODE(store.kek_path.stat().st_mode) == 0o600
    assert key.key not in store.kek_path.read_bytes()
    kek = base64.b64decode(json.loads(store.kek_path.read_text())["TH"])
    assert kek not in raw_bytes(store)


def test_open_key_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_key_store(str(tmp_path / "k.sqlite")), EmbeddedKeyStore)
    monkeypatch.delenv("VAULT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="VAULT_TOKEN"):
        open_key_store("vault+https://vault.example:8200?mount=transit")
    with pytest.raises(ConfigError, match="unknown parameters"):
        open_key_store("vault+https://vault.example:8200?mnt=transit")


@pytest.mark.skipif(
    not (os.environ.get("VAULT_ADDR") and os.environ.get("VAULT_TOKEN")),
    reason="needs a real Vault with the transit engine: set VAULT_ADDR and VAULT_TOKEN",
)
def test_vault_transit_store(tmp_path: Path) -> None:
    pytest.importorskip("hvac", reason="the 'vault' extra (hvac) is not installed")
    mount = os.environ.get("VAULT_TRANSIT_MOUNT", "transit")
    url = os.environ["VAULT_ADDR"].rstrip("/")
    store: KeyStore = open_key_store(f"vault+{url}?mount={mount}&db={tmp_path / 'vault.sqlite'}")
    assert isinstance(store, VaultTransitKeyStore)
    case = f"TH-{uuid.uuid4().hex[:8]}"
    key = store.data_key(case, "TH")
    assert store.data_key(case, "TH") == key
    with pytest.raises(KeyNotGranted):
        store.unwrap(case, "MM")
    store.grant(case, "MM")
    assert store.unwrap(case, "MM") == key
    assert store.destroy(case, reason="consent withdrawn", at=NOW)
    with pytest.raises(KeysDestroyed):
        store.unwrap(case, "TH")


# -- policy

countries = st.sampled_from(COUNTRIES)
categories = st.sampled_from(CATEGORIES)
category_sets = st.frozensets(categories)
agreements = st.dictionaries(st.tuples(countries, countries), category_sets)


def grants_of(table: dict[tuple[str, str], frozenset[str]]) -> Callable[[str, str], Collection[str]]:
    return lambda a, b: table.get((a, b), frozenset())


@given(
    category=categories,
    holder=countries,
    partner=st.none() | countries,
    transit=st.lists(countries, max_size=4),
    consent=category_sets,
    table=agreements,
)
def test_readers_policy(
    category: str,
    holder: str,
    partner: str | None,
    transit: list[str],
    consent: frozenset[str],
    table: dict[tuple[str, str], frozenset[str]],
) -> None:
    grants = grants_of(table)
    readers = readers_of(
        category, holder=holder, partner=partner, transit=transit, consent=consent, grants=grants
    )
    assert holder in readers
    assert readers <= {holder, *([partner] if partner else []), *transit}
    if category not in consent:
        assert readers == {holder}
    for country in readers - {holder}:
        assert category in consent
        if country == partner:
            continue
        assert category in grants(holder, country)
        if partner is not None:
            assert category in grants(partner, country)
    if partner is not None and partner != holder:
        assert (partner in readers) == (category in consent and category in grants(holder, partner))
    # Narrowing consent never adds a reader.
    narrower = readers_of(
        category, holder=holder, partner=partner, transit=transit, consent=consent - {category}, grants=grants
    )
    assert narrower <= readers


def test_readers_example() -> None:
    table = {
        ("TH", "MM"): frozenset({"CaseCore", "PersonalIdentity"}),
        ("TH", "LA"): frozenset({"CaseCore", "PersonalIdentity"}),
        ("MM", "LA"): frozenset({"CaseCore"}),
    }
    grants = grants_of(table)

    def readers(category: str, consent: Collection[str]) -> frozenset[str]:
        return readers_of(category, holder="TH", partner="MM", transit=["LA"], consent=consent, grants=grants)

    assert readers("PersonalIdentity", CATEGORIES) == {"TH", "MM"}
    assert readers("CaseCore", CATEGORIES) == {"TH", "MM", "LA"}
    assert readers("PersonalIdentity", {"CaseCore"}) == {"TH"}


def test_sealed_categories() -> None:
    assert {"PersonalIdentity"} == SEALED_CATEGORIES
    assert is_sealed("PersonalIdentity")
    assert not is_sealed("Health")
    assert is_sealed("Health", sensitive={"Health"})


def test_public_key_needs_aware_times() -> None:
    with pytest.raises(ValueError, match="valid_from: must carry a time zone"):
        PublicKey("TH", "th-1", b"\x00" * 32, datetime(2026, 1, 1), None)
