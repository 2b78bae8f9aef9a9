"""docker/compose.yaml and docker/Dockerfile, checked without Docker.

The compose file is read as Compose reads it (YAML merge keys, ``$$`` for a literal ``$``), and
every ``lintas`` command line in it, the containers' commands and their health checks alike, is
parsed by the real CLI: a renamed or removed option, a missing required one or a command that no
longer exists fails here, naming the service. The nodes' configuration is the one
``hub.broker.config.server_properties`` writes for the compose file's own node ids and voters, so
the clients' bootstrap servers, the certificates' host names and the files each node reads are
checked against it.
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.main import get_command

from hub.broker.config import server_properties
from hub.broker.node import node_config, parse_voters
from hub.cli import app
from hub.security.principals import ALERTS, API, OPERATOR, ROUTER, STATS, WEBHOOKS
from hub.worker import GROUP_ID as ROUTER_GROUP
from projections.alerts.worker import GROUP_ID as ALERTS_GROUP

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

#: The one volume the init service writes the CA, certificates and passwords into.
SECRETS_VOLUME = "secrets"
#: What each client command connects as: it must be given that principal's password and no other.
PRINCIPAL_OF: Mapping[tuple[str, ...], str] = {
    ("worker",): ROUTER,
    ("alerts",): ALERTS,
    ("api",): API,
    ("webhooks", "run"): WEBHOOKS,
    ("stats",): STATS,
    ("acl", "apply"): OPERATOR,
    ("topics", "init"): OPERATOR,
}
SECRETS_COMMAND = ("broker", "secrets")
NODE_COMMAND = ("broker", "node")
#: The services a deployment scales with --scale.
SCALED = {"router": ("worker",), "alerts": ("alerts",)}
#: What a container's shell sees as $HOSTNAME: Docker sets it to the container's own host name.
HOSTNAME = "c0ffee123456"


# -- reading the compose file as Compose does -------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def _interpolate(text: str) -> str:
    """Compose's interpolation: ``$$`` is a literal ``$``; ``${NAME:-default}`` its default. Any other
    variable would come from the environment of whoever runs compose: the file must not need one."""
    parts = text.split("$$")
    out = []
    for part in parts:

        def replace(match: re.Match[str]) -> str:
            braced = match.group("braced")
            if braced is not None and ":-" in braced:
                return braced.split(":-", 1)[1]
            raise AssertionError(f"compose.yaml: {match.group(0)} in {text!r} needs the caller's environment")

        out.append(_VARIABLE.sub(replace, part))
    return "$".join(out)


def _interpolated(value: Any) -> Any:
    if isinstance(value, str):
        return _interpolate(value)
    if isinstance(value, list):
        return [_interpolated(item) for item in value]
    if isinstance(value, dict):
        return {key: _interpolated(item) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # resolves anchors and merge keys
    return _interpolated({key: value for key, value in loaded.items() if not key.startswith("x-")})


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _strings(value: Any) -> Iterator[str]:
    """Every key and string value in a loaded YAML document."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): str(value) for key, value in env.items()}


# -- the command lines ------------------------------------------------------------------------------


def _expand(word: str, env: Mapping[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        if name not in env:
            raise AssertionError(f"{where}: ${name} is not set in the container")
        return env[name]

    return _VARIABLE.sub(replace, word)


def _shell(script: str, env: Mapping[str, str], where: str) -> list[list[str]]:
    """The simple commands of a ``sh -c`` script, ``exec`` dropped and variables expanded."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token and set(token) <= set(";&|"):
            commands.append([])
        else:
            commands[-1].append(token)
    found = []
    for words in filter(None, commands):
        if words[0] == "exec":
            words = words[1:]
        found.append([_expand(word, env, where) for word in words])
    return found


@dataclass(frozen=True)
class Invocation:
    service: str
    where: str  # "command" or "healthcheck"
    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.service} ({self.where}): {shlex.join(self.argv)}"


def _container_env(service: Mapping[str, Any]) -> dict[str, str]:
    return {"HOSTNAME": HOSTNAME, **_environment(service)}


def _invocations(name: str, service: Mapping[str, Any]) -> list[Invocation]:
    """Every command line the service's containers run: their command and their health check."""
    env = _container_env(service)
    found: list[tuple[str, list[str]]] = []
    entrypoint = service.get("entrypoint")
    command = service.get("command") or []
    if isinstance(command, str):
        command = shlex.split(command)
    if entrypoint is None:  # the image's entrypoint, `lintas` (test_dockerfile_runs_lintas)
        found.append(("command", ["lintas", *command]))
    elif list(entrypoint) in (["/bin/sh", "-c"], ["sh", "-c"]):
        assert len(command) == 1, f"{name}: sh -c takes its script as one command word"
        found += [("command", argv) for argv in _shell(command[0], env, name)]
    else:
        found.append(("command", [*entrypoint, *command]))
    test = (service.get("healthcheck") or {}).get("test")
    if test and test[0] == "CMD":
        found.append(("healthcheck", list(test[1:])))
    elif test and test[0] == "CMD-SHELL":
        found += [("healthcheck", argv) for argv in _shell(test[1], env, name)]
    return [Invocation(name, where, tuple(argv)) for where, argv in found]


def _lintas(services: Mapping[str, Mapping[str, Any]]) -> Iterator[Invocation]:
    for name, service in services.items():
        for invocation in _invocations(name, service):
            if invocation.argv[0] == "lintas":
                yield invocation


@dataclass(frozen=True)
class Parsed:
    path: tuple[str, ...]
    params: dict[str, Any]


@functools.cache
def _cli() -> Any:
    """The click command Typer builds from ``hub.cli.app`` (once: it takes a while)."""
    return get_command(app)


def parse(argv: tuple[str, ...] | list[str]) -> Parsed:
    """Parse ``lintas ARGS`` as the real CLI does, down to the command that would run, without
    running it: unknown commands and options, missing required options and values that do not
    convert raise the CLI's own usage error."""
    command: Any = _cli()
    context = command.make_context("lintas", list(argv[1:]))
    path: list[str] = []
    while hasattr(command, "resolve_command"):  # a command group
        protected = getattr(context, "_protected_args", None)
        rest = [*(context.protected_args if protected is None else protected), *context.args]
        assert rest, f"lintas {' '.join(path)}: no command given"
        name, command, rest = command.resolve_command(context, rest)
        path.append(name)
        context = command.make_context(name, rest, parent=context)
    return Parsed(tuple(path), dict(context.params))


def _parsed(invocation: Invocation) -> Parsed:
    try:
        return parse(invocation.argv)
    except Exception as exc:  # the CLI's usage errors, whichever click the CLI is built on
        message = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
        pytest.fail(f"{invocation}: the CLI refuses it: {message}", pytrace=False)


def _main(name: str, service: Mapping[str, Any]) -> Parsed:
    commands = [i for i in _invocations(name, service) if i.where == "command"]
    assert len(commands) == 1, f"{name}: runs {commands}"
    assert commands[0].argv[0] == "lintas", f"{name}: runs {commands[0]}"
    return _parsed(commands[0])


def _by_command(services: Mapping[str, Mapping[str, Any]]) -> dict[str, Parsed]:
    return {name: _main(name, service) for name, service in services.items()}


def _nodes(services: Mapping[str, Mapping[str, Any]]) -> dict[str, Parsed]:
    return {name: p for name, p in _by_command(services).items() if p.path == NODE_COMMAND}


def _clients(services: Mapping[str, Mapping[str, Any]]) -> dict[str, Parsed]:
    return {
        name: p for name, p in _by_command(services).items() if p.path not in (NODE_COMMAND, SECRETS_COMMAND)
    }


def _init(services: Mapping[str, Mapping[str, Any]]) -> tuple[str, Parsed]:
    found = [(name, p) for name, p in _by_command(services).items() if p.path == SECRETS_COMMAND]
    assert len(found) == 1, f"one service makes the secrets, found {[name for name, _ in found]}"
    return found[0]


# -- mounts of the secrets volume -------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    subpath: str | None
    read_only: bool


def _mounts(service: Mapping[str, Any]) -> list[Mount]:
    found = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found.append(Mount(source, target, None, "ro" in mode))
        else:
            options = volume.get("volume") or {}
            found.append(
                Mount(
                    volume.get("source", ""),
                    volume["target"],
                    options.get("subpath"),
                    bool(volume.get("read_only")),
                )
            )
    return found


def _secret_mounts(service: Mapping[str, Any]) -> list[Mount]:
    return [mount for mount in _mounts(service) if mount.source == SECRETS_VOLUME]


# -- the cluster --------------------------------------------------------------------------------------


def test_exactly_three_kafka_nodes_with_distinct_ids_and_the_same_voters(
    services: dict[str, dict[str, Any]],
) -> None:
    nodes = _nodes(services)
    assert sorted(nodes) == ["kafka-1", "kafka-2", "kafka-3"]
    ids = {name: p.params["node_id"] for name, p in nodes.items()}
    assert len(set(ids.values())) == 3, ids
    assert all(name == f"kafka-{node_id}" for name, node_id in ids.items()), ids
    voters = {p.params["voters"] for p in nodes.values()}
    assert len(voters) == 1, f"the nodes disagree about the quorum: {voters}"
    quorum = parse_voters(voters.pop())
    assert {(v.node_id, v.host) for v in quorum} == {(node_id, name) for name, node_id in ids.items()}
    data = {
        next(m.source for m in _mounts(services[name]) if m.target == str(p.params["data"]))
        for name, p in nodes.items()
    }
    assert len(data) == 3, f"each node keeps its storage in a volume of its own: {data}"


def _node_properties(services: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[Any, dict[str, str]]]:
    """What each node would write: ``lintas broker node``'s own configuration for its options."""
    found = {}
    for name, p in _nodes(services).items():
        config = node_config(
            p.params["node_id"],
            parse_voters(p.params["voters"]),
            p.params["secrets"],
            p.params["data"],
            p.params["bind"],
        )
        found[name] = (config, server_properties(config))
    return found


def test_the_nodes_are_secured_by_the_one_broker_configuration(services: dict[str, dict[str, Any]]) -> None:
    for name, (_, props) in _node_properties(services).items():
        protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
        assert protocols == {"CLIENT": "SASL_SSL", "INTERNAL": "SSL", "CONTROLLER": "SSL"}, name
        assert props["listener.name.internal.ssl.client.auth"] == "required", name
        assert props["listener.name.controller.ssl.client.auth"] == "required", name
        assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512", name
        assert props["allow.everyone.if.no.acl.found"] == "false", name
        assert props["default.replication.factor"] == "3", name
        assert props["min.insync.replicas"] == "2", name


def test_no_second_copy_of_the_broker_configuration(services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "PLAINTEXT" not in text
    for name, service in services.items():
        copies = [key for key in _environment(service) if key.upper().startswith("KAFKA")]
        assert not copies, f"{name}: broker settings as environment variables: {copies}"
        assert service.get("image") == "lintas:local", (
            f"{name}: runs {service.get('image')}, not the Lintas image"
        )
        assert service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file(), name
    # Not one of the settings hub.broker.config writes appears in a key or a value (comments aside).
    keys = {key for _, props in _node_properties(services).values() for key in props}
    words = set(_strings(yaml.safe_load(text)))
    written = sorted(
        key for key in keys for word in words if re.search(rf"(?<![\w.-]){re.escape(key)}(?![\w.-])", word)
    )
    assert not written, f"compose.yaml repeats settings of hub.broker.config: {written}"


def test_node_certificates_and_advertised_listeners_match_the_names_clients_use(
    services: dict[str, dict[str, Any]],
) -> None:
    _, init = _init(services)
    advertised = set()
    for name, (config, props) in _node_properties(services).items():
        assert init.params["host"].format(id=config.node.node_id) == name, "the certificate's host name"
        listeners = dict(item.split("://") for item in props["advertised.listeners"].split(","))
        advertised.add(listeners["CLIENT"])
    assert init.params["nodes"] == len(advertised)
    for name, _ in _clients(services).items():
        given = set(_environment(services[name])["LINTAS_BOOTSTRAP_SERVERS"].split(","))
        assert given == advertised, f"{name}: bootstrap servers {given}, the nodes advertise {advertised}"


def test_each_node_mounts_the_files_it_reads_and_never_the_ca_key(
    services: dict[str, dict[str, Any]],
) -> None:
    _, init = _init(services)
    out = Path(init.params["out"])
    for name, (config, _) in _node_properties(services).items():
        secrets = Path(_nodes(services)[name].params["secrets"])
        mounted = {mount.target: mount for mount in _secret_mounts(services[name])}
        wanted = {
            str(config.keystore): (config.keystore, True),
            str(config.truststore): (config.truststore, True),
            str(secrets / "cluster.id"): (secrets / "cluster.id", True),
            str(secrets / "passwords"): (secrets / "passwords", False),  # formats the SCRAM credentials
        }
        for target, (path, _) in wanted.items():
            assert target in mounted, f"{name}: reads {target}, which is not mounted"
            # The same file the init service wrote under its --out, at the same place under --secrets.
            assert mounted[target].subpath == str(Path(path).relative_to(secrets)), (name, target)
            assert mounted[target].read_only, f"{name}: {target} is writable"
        assert set(mounted) == set(wanted), (
            f"{name}: more of the secrets than it needs: {set(mounted) - set(wanted)}"
        )
        assert out.is_absolute()


def test_only_the_init_service_sees_the_whole_secrets_volume(services: dict[str, dict[str, Any]]) -> None:
    init_name, init = _init(services)
    (whole,) = _secret_mounts(services[init_name])
    assert whole.subpath is None, f"{init_name}: writes the whole volume"
    assert not whole.read_only, f"{init_name}: writes the whole volume"
    assert whole.target == str(init.params["out"]), f"{init_name}: writes where it mounts the volume"
    for name, service in services.items():
        if name == init_name:
            continue
        for mount in _secret_mounts(service):
            assert mount.subpath, f"{name}: mounts the whole secrets volume"
            assert mount.read_only, f"{name}: may write {mount.subpath}"
            assert not mount.subpath.startswith("tls/ca.key"), f"{name}: gets the CA's key"
            assert mount.subpath not in ("tls", "tls/"), f"{name}: gets the CA's key with the tls folder"


# -- the clients ------------------------------------------------------------------------------------


def test_every_client_connects_with_sasl_ssl_and_scram(services: dict[str, dict[str, Any]]) -> None:
    clients = _clients(services)
    assert {"worker", "alerts", "api"} <= {p.path[0] for p in clients.values()}
    assert ("acl", "apply") in {p.path for p in clients.values()}
    assert ("topics", "init") in {p.path for p in clients.values()}
    for name in clients:
        env = _environment(services[name])
        assert env.get("LINTAS_SECURITY_PROTOCOL") == "SASL_SSL", name
        assert env.get("LINTAS_SASL_MECHANISM") == "SCRAM-SHA-512", name
        assert "LINTAS_SASL_PASSWORD" not in env, f"{name}: a password in the environment"
        ca = [m for m in _secret_mounts(services[name]) if m.subpath == "tls/ca.pem"]
        assert [m.target for m in ca] == [env.get("LINTAS_SSL_CAFILE")], f"{name}: the CA to check the nodes"


def test_every_client_gets_its_own_password_and_no_other(services: dict[str, dict[str, Any]]) -> None:
    for name, parsed in _clients(services).items():
        assert parsed.path in PRINCIPAL_OF, (
            f"{name}: which principal does `lintas {' '.join(parsed.path)}` run as?"
        )
        principal = PRINCIPAL_OF[parsed.path]
        env = _environment(services[name])
        assert env.get("LINTAS_SASL_USERNAME") == principal, (
            f"{name}: runs as {env.get('LINTAS_SASL_USERNAME')}"
        )
        passwords = [
            m for m in _secret_mounts(services[name]) if m.subpath and m.subpath.startswith("passwords")
        ]
        assert [m.subpath for m in passwords] == [f"passwords/{principal}.password"], name
        assert env.get("LINTAS_SASL_PASSWORD_FILE") == passwords[0].target, name


def test_start_order_secrets_nodes_acls_topics_then_the_hub(services: dict[str, dict[str, Any]]) -> None:
    def condition(name: str, on: str) -> str | None:
        depends = services[name].get("depends_on") or {}
        return depends.get(on, {}).get("condition") if isinstance(depends, dict) else None

    init_name, _ = _init(services)
    clients = _clients(services)
    acl = next(name for name, p in clients.items() if p.path == ("acl", "apply"))
    topics = next(name for name, p in clients.items() if p.path == ("topics", "init"))
    for node in _nodes(services):
        assert condition(node, init_name) == "service_completed_successfully", node
        assert services[node].get("healthcheck"), f"{node}: no health check"
        assert condition(acl, node) == "service_healthy", f"{acl} before {node} is healthy"
    assert condition(topics, acl) == "service_completed_successfully"
    for name in set(clients) - {acl, topics}:
        assert condition(name, topics) == "service_completed_successfully", f"{name} before the topics exist"
    for name in (init_name, acl, topics):
        assert services[name].get("restart") == "no", f"{name} runs once"


def test_router_and_alerts_scale_with_a_stable_instance_per_container(
    services: dict[str, dict[str, Any]],
) -> None:
    groups = {("worker",): ROUTER_GROUP, ("alerts",): ALERTS_GROUP}
    assert not [name for name, service in services.items() if "container_name" in service]
    for name, path in SCALED.items():
        service = services[name]
        assert "ports" not in service, f"{name}: a fixed host port cannot be scaled"
        assert "hostname" not in service, f"{name}: one host name for every replica"
        parsed = _main(name, service)
        assert parsed.path == path
        # Transactional id <group>-<instance>: unique per replica, the same after a restart.
        assert parsed.params["instance"] == HOSTNAME, f"{name}: --instance is not the container's host name"
        (health,) = [i for i in _invocations(name, service) if i.where == "healthcheck"]
        checked = _parsed(health)
        assert checked.path == ("health",)
        status_dir = _environment(service)["LINTAS_PROCESSOR__STATUS_DIR"]
        assert checked.params["status_file"] == Path(status_dir) / f"{groups[path]}-{HOSTNAME}.json", name


def test_the_api_is_published_on_8080(services: dict[str, dict[str, Any]]) -> None:
    (name,) = [name for name, p in _clients(services).items() if p.path == ("api",)]
    parsed = _main(name, services[name])
    assert parsed.params["host"] == "0.0.0.0"
    assert parsed.params["port"] == 8080
    assert "8080:8080" in [str(port) for port in services[name]["ports"]]


def test_every_lintas_command_line_parses_with_the_real_cli(services: dict[str, dict[str, Any]]) -> None:
    found = list(_lintas(services))
    assert len(found) >= len(services)
    for invocation in found:
        _parsed(invocation)


def test_a_drifted_command_line_fails() -> None:
    with pytest.raises(Exception, match="No such option"):
        parse(["lintas", "broker", "node", "--node", "1"])
    with pytest.raises(Exception, match="Missing"):
        parse(["lintas", "broker", "node", "--node-id", "1"])
    with pytest.raises(Exception, match="No such command"):
        parse(["lintas", "workers"])


def test_python_health_checks_compile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for invocation in _invocations(name, service):
            argv = invocation.argv
            if argv[0] == "python" and argv[1] == "-c":
                compile(argv[2], f"{invocation.service} {invocation.where}", "exec")


# -- the image ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]]

    def all(self, keyword: str) -> list[str]:
        return [args for kind, args in self.instructions if kind == keyword]


def _stages() -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, _, rest = line.partition(" ")
        kind, rest = kind.upper(), rest.strip()
        if kind == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            stages.append(Stage(base, words[2] if len(words) > 2 else None, []))
        elif not stages and kind == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default.strip("\"'")
        elif stages:
            stages[-1].instructions.append((kind, rest))
    return args, stages


def test_dockerfile_is_multi_stage_on_python_311_slim_bookworm() -> None:
    _, stages = _stages()
    assert len(stages) >= 2
    assert all(stage.base == "python:3.11-slim-bookworm" for stage in stages), [s.base for s in stages]


def test_dockerfile_runs_as_a_non_root_user_and_fetches_nothing_by_pipe() -> None:
    _, stages = _stages()
    final = stages[-1]
    users = final.all("USER")
    assert users, "the image runs as root"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"\b(curl|wget)\b[^\n|]*\|\s*(ba|da|z)?sh\b", text), "a script piped into a shell"


def test_dockerfile_provisions_kafka_at_build_time_without_maven_in_the_image() -> None:
    _, stages = _stages()
    build, final = stages[0], stages[-1]
    assert build.name, "the build stage needs a name to copy from"
    assert any("LINTAS_CACHE_DIR=/opt/lintas/cache" in env for env in build.all("ENV"))
    assert any("lintas broker provision" in run for run in build.all("RUN"))
    assert any(re.search(r"pip install .*'?\.(\[|'|\s|$)", run) for run in build.all("RUN")), "the project"
    copies = final.all("COPY")
    assert any(f"--from={build.name}" in copy and "/opt/lintas/cache" in copy for copy in copies)
    installs = " ".join(final.all("RUN"))
    assert "openjdk-17-jre-headless" in installs
    assert "maven" not in installs
    assert not any("lintas broker provision" in run for run in final.all("RUN"))
    envs = " ".join(final.all("ENV"))
    assert "LINTAS_LOG_FORMAT=json" in envs
    assert "LINTAS_CACHE_DIR=/opt/lintas/cache" in envs


def test_dockerfile_runs_lintas() -> None:
    _, stages = _stages()
    assert stages[-1].all("ENTRYPOINT")[-1] == '["lintas"]'


def test_dockerignore_lets_in_what_the_dockerfile_copies() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "the build context is an allow list"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    _, stages = _stages()
    for stage in stages:
        for copy in stage.all("COPY"):
            words = [word for word in copy.split() if not word.startswith("--")]
            if any(word.startswith("--from") for word in copy.split()):
                continue
            for source in words[:-1]:
                assert source.rstrip("/") in allowed, f"COPY {source}: left out by .dockerignore"
