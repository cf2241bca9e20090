#!/usr/bin/env python3
"""Writes a docker-compose file for one lottery server and N agencies.

    python3 tools/gen_compose.py OUTPUT N [--client-env KEY=VALUE ...]

The file has a `server` service and `client1` ... `clientN` (container names
exactly those) on one network, `testing_net` (172.25.125.0/24). It states the
round it was made for: the server gets SERVER_AGENCIES=N in its environment
(the environment beats the config file), so the draw waits for exactly these
N agencies whatever conf/server.toml says or omits; server.max_connections
left at its default (0) follows from it. N = 0 gives the server alone, which
then takes server.agencies from its config file.

Before writing anything it checks that dataset/agency-<i>.csv exists as a
regular file beside OUTPUT for every agency: a bind mount of a missing file
makes Docker create an empty directory in its place, and that agency would
fail while the server waits for it. --allow-missing-datasets writes the file
anyway (for datasets mounted later) and lists each missing file as a warning. Paths in it are
relative to the file's own directory, as compose resolves them: `conf/`
and `dataset/` next to OUTPUT are mounted read-only, so a changed config or
dataset takes effect on the next `up` without rebuilding an image. The bets
file lives on the named volume `bets`.

Mutual TLS (docs/SECURITY.md): unless --plaintext, it makes what is missing
of a certificate set in `certs/` beside OUTPUT (tools/gen_certs.py: a CA,
the server's certificate for the names server, localhost and 127.0.0.1, one
per agency, a probe) and mounts into each container only its own
certificate and key: agency K's container never sees another agency's key.
Their paths under /etc/lottery/tls go in the environment (SERVER_TLS_*,
CLI_TLS_*), so a config file that names no TLS key still gives a mutual-TLS
round (the built-in defaults of those keys are empty).
The containers run as their images' users (server 10001, agency 10002), so
when run as root it hands each key to the user of the container that reads
it (mode 0600); otherwise it makes the mounted keys readable (0644) inside
the certs folder, which it makes 0700, and says so. --plaintext runs both
programs with tls.mode = off instead.

Every container is hardened: all capabilities dropped, no-new-privileges, a
read-only root file system (a tmpfs on /tmp), pid and memory limits. The
server's health check is docker/echo-check.sh (lottery-agency in echo mode,
over TLS with the server's own certificate, which names no agency).

The file works with `docker compose` (v2) and `docker-compose` 1.29 (format
2.4: resource limits without swarm): it has no top-level `name:` (the
Makefile passes the project name with -p) and no `build:` (the Makefile
builds the images). It is written atomically: a temporary file in the same
directory, then rename.

--swarm writes a stack file for `docker stack deploy` instead (Docker
Swarm, several machines; docs/DEPLOY.md), from the same checks and the same
certificate set:
- The server is one replica on the node labelled lottery.server=true, its
  bets file on the named volume `bets` of that node (a journal-backed round
  survives a task restart there), restart on failure, a stop grace period
  longer than server.shutdown_timeout, and `endpoint_mode: dnsrr`: agencies
  resolve `server` to the task's own address (no virtual IP, which this
  engine cannot route, and one long-lived TCP connection per agency gains
  nothing from one).
- Agency K is its own service `clientK` (one replica, restart on failure;
  it resumes from the server's last_seq). Certificates and keys are Docker
  secrets, and service K is granted only ca.pem, agency-K.pem and
  agency-K.key: secrets are granted per service, which is why the agencies
  are not one replicated service with {{.Task.Slot}} as their id (every task
  of it would hold every agency's key). Secret names carry a hash of their
  content, so a re-issued certificate is a new secret on the next deploy.
- conf/server.toml and conf/client.toml travel as Docker configs. Datasets
  are bind-mounted from an absolute path (--dataset-dir, default the
  dataset/ beside OUTPUT) that must exist on the node each agency runs on;
  --pin-agencies places agency K on nodes labelled lottery.agency.K=true.
- Compose-only keys are left out (container_name, depends_on, pids_limit);
  memory limits move under deploy.resources.

Exit codes: 0 written, 2 bad arguments, 1 the file could not be written,
3 dataset files missing (nothing written).
"""
import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile

SUBNET = "172.25.125.0/24"
SERVER_IMAGE = "lottery-server:latest"
AGENCY_IMAGE = "lottery-agency:latest"
SERVER_PORT = 12345
# server.shutdown_timeout defaults to 5 s: the grace period leaves room for the
# server to stop its workers and log its exit before docker sends SIGKILL.
STOP_GRACE_SECONDS = 10
# The health check runs docker/echo-check.sh inside the server container.
HEALTHCHECK_INTERVAL = "10s"

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The images' users (docker/*.Dockerfile): who reads each mounted key.
SERVER_UID = 10001
AGENCY_UID = 10002
SERVER_NAMES = ["server", "localhost", "127.0.0.1"]
TLS_DIR = "/etc/lottery/tls"
GEN_CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_certs.py")
# Limits per container: the server forks a worker per connection (at most
# 2 x agencies + 16 by default, plus health checks).
SERVER_MEMORY = "1g"
AGENCY_MEMORY = "256m"
AGENCY_PIDS = 16


def server_pids(clients: int) -> int:
    return 2 * max(clients, 5) + 64


def hardening(pids: int, memory: str) -> list[str]:
    return [
        "    read_only: true",
        "    tmpfs:",
        "      - /tmp",
        "    cap_drop:",
        "      - ALL",
        "    security_opt:",
        "      - no-new-privileges:true",
        f"    pids_limit: {pids}",
        f"    mem_limit: {memory}",
    ]


def healthcheck(probe: str) -> list[str]:
    """The server's health check (docker/echo-check.sh), over TLS with the
    certificate `probe` ("off": plaintext); compose and swarm share it."""
    return [
        "    healthcheck:",
        f"      test: [\"CMD\", \"/usr/local/bin/lottery-echo-check\", \"127.0.0.1\", "
        f"\"{SERVER_PORT}\", \"{probe}\"]",
        f"      interval: {HEALTHCHECK_INTERVAL}",
        "      timeout: 15s",
        "      retries: 3",
        "      start_period: 5s",
    ]


def tls_mount(name: str) -> str:
    return f"      - ./certs/{name}:{TLS_DIR}/{name}:ro"


def server_tls_env() -> list[str]:
    """Where the mounted certificates are, in the environment: the config
    file may name no TLS key (the built-in defaults are empty) and the
    round is still mutual TLS. The environment beats the file."""
    return [f"      - SERVER_TLS_{key}={TLS_DIR}/{name}" for key, name in (
        ("CERTIFICATE", "server.pem"), ("PRIVATE_KEY", "server.key"),
        ("CLIENT_CA", "ca.pem"), ("CRL", "crl.pem"))]


def agency_tls_env(agency: int) -> list[str]:
    """Agency K's certificate, key and CA in the environment (as above)."""
    return [f"      - CLI_TLS_{key}={TLS_DIR}/{name}" for key, name in (
        ("CERTIFICATE", f"agency-{agency}.pem"), ("PRIVATE_KEY", f"agency-{agency}.key"),
        ("SERVER_CA", "ca.pem"))]


def prepare_certs(output: str, clients: int) -> list[str]:
    """Makes what is missing of the certificate set beside OUTPUT and gives
    each mounted key to its reader. Returns notes for the operator."""
    base = os.path.dirname(os.path.abspath(output))
    certs = os.path.join(base, "certs")
    argv = [sys.executable, GEN_CERTS, certs, "--agencies", str(max(clients, 1))]
    for name in SERVER_NAMES:
        argv += ["--server-name", name]
    r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise OSError(f"tools/gen_certs.py failed: {r.stderr.strip()}")
    os.chmod(certs, 0o700)
    readers = {"server.key": SERVER_UID, "probe.key": AGENCY_UID}
    readers.update({f"agency-{i}.key": AGENCY_UID for i in range(1, clients + 1)})
    if os.geteuid() == 0:
        for key, uid in readers.items():
            os.chown(os.path.join(certs, key), uid, uid)
            os.chmod(os.path.join(certs, key), 0o600)
        return []
    for key in readers:
        os.chmod(os.path.join(certs, key), 0o644)
    return [f"the mounted keys in {certs} are mode 0644 (the containers' users must read "
            f"them; only root can give them away); the folder itself is 0700"]


def quote(value: str) -> str:
    """A YAML double-quoted scalar that compose takes literally: `$` is
    doubled so compose does not interpolate it."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$")
    return f'"{escaped}"'


EXIT_DATASETS_MISSING = 3


def dataset_name(agency: int) -> str:
    """The dataset of one agency, relative to the compose file's folder."""
    return f"dataset/agency-{agency}.csv"


def missing_datasets(output: str, clients: int, dataset_dir: str | None = None) -> list[str]:
    """The agencies' dataset files that are not regular files beside OUTPUT
    (or in dataset_dir)."""
    if dataset_dir is not None:
        return [os.path.join(dataset_dir, f"agency-{i}.csv") for i in range(1, clients + 1)
                if not os.path.isfile(os.path.join(dataset_dir, f"agency-{i}.csv"))]
    base = os.path.dirname(os.path.abspath(output))
    return [dataset_name(i) for i in range(1, clients + 1)
            if not os.path.isfile(os.path.join(base, dataset_name(i)))]


def render(clients: int, client_env: list[tuple[str, str]], plaintext: bool = False) -> str:
    lines = [
        f"# Generated by tools/gen_compose.py for {clients} "
        f"agenc{'y' if clients == 1 else 'ies'}; edit the generator, not this file.",
        "# Run it through the Makefile: make docker-compose-up / docker-compose-logs /",
        "# docker-compose-down (they pass the project name and build the images).",
    ]
    if clients > 0:
        lines += [
            f"# The server's SERVER_AGENCIES={clients} makes the draw wait for exactly these "
            f"{clients} agenc{'y' if clients == 1 else 'ies'},",
            "# whatever conf/server.toml says about server.agencies (the environment beats "
            "the file).",
        ]
    else:
        lines += ["# No agencies: the server takes server.agencies from conf/server.toml."]
    if plaintext:
        lines += ["# tls.mode = off (--plaintext): any peer on the network can claim any agency."]
    else:
        lines += ["# Mutual TLS: certs/ beside this file (tools/gen_certs.py); each container "
                  "mounts only its own key."]
    lines += [
        "version: '2.4'",
        "services:",
        "  server:",
        "    container_name: server",
        f"    image: {SERVER_IMAGE}",
        "    command: [\"--config\", \"/etc/lottery/server.toml\"]",
    ]
    server_env = ([f"      - SERVER_AGENCIES={clients}"] if clients > 0 else []) + \
        (["      - SERVER_TLS_MODE=off"] if plaintext else server_tls_env())
    if server_env:
        lines += ["    environment:"] + server_env
    lines += [
        "    volumes:",
        "      - ./conf/server.toml:/etc/lottery/server.toml:ro",
        "      - bets:/var/lib/lottery",
    ]
    if not plaintext:
        lines += [tls_mount(n) for n in ("ca.pem", "crl.pem", "server.pem", "server.key")]
    probe = "off" if plaintext else "server"
    lines += [
        "    networks:",
        "      - testing_net",
        f"    stop_grace_period: {STOP_GRACE_SECONDS}s",
        *hardening(server_pids(clients), SERVER_MEMORY),
        *healthcheck(probe),
    ]
    for i in range(1, clients + 1):
        lines += [
            f"  client{i}:",
            f"    container_name: client{i}",
            f"    image: {AGENCY_IMAGE}",
            "    command: [\"--config\", \"/etc/lottery/client.toml\"]",
            "    environment:",
            f"      - CLI_ID={i}",
            f"      - CLI_SERVER_ADDRESS=server:{SERVER_PORT}",
        ]
        lines += ["      - CLI_TLS_MODE=off"] if plaintext else agency_tls_env(i)
        lines += [f"      - {quote(f'{k}={v}')}" for k, v in client_env]
        lines += [
            "    volumes:",
            "      - ./conf/client.toml:/etc/lottery/client.toml:ro",
            f"      - ./{dataset_name(i)}:/srv/lottery/dataset/agency-{i}.csv:ro",
        ]
        if not plaintext:
            lines += [tls_mount(n) for n in ("ca.pem", f"agency-{i}.pem", f"agency-{i}.key")]
        lines += [
            "    networks:",
            "      - testing_net",
            "    depends_on:",
            "      - server",
            f"    stop_grace_period: {STOP_GRACE_SECONDS}s",
            *hardening(AGENCY_PIDS, AGENCY_MEMORY),
        ]
    lines += [
        "networks:",
        "  testing_net:",
        "    ipam:",
        "      driver: default",
        "      config:",
        f"        - subnet: {SUBNET}",
        "volumes:",
        "  bets:",
    ]
    return "\n".join(lines) + "\n"


SECRETS_DIR = "/run/secrets"
SERVER_SECRETS = ("ca.pem", "crl.pem", "server.pem", "server.key")


def secret_id(certs: str, name: str) -> str:
    """The stack's name for a certificate file: its name and a hash of its
    content, since a swarm secret cannot change once created."""
    with open(os.path.join(certs, name), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return f"{name.replace('.', '_')}_{digest}"


def secret_grant(certs: str, name: str, uid: int) -> list[str]:
    return [
        f"      - source: {secret_id(certs, name)}",
        f"        target: {name}",
        f"        uid: \"{uid}\"",
        f"        gid: \"{uid}\"",
        "        mode: 0400" if name.endswith(".key") else "        mode: 0444",
    ]


def stack_hardening() -> list[str]:
    """What a swarm service takes of the compose file's hardening (the rest
    is not in a stack file's reach: pids limit, no-new-privileges)."""
    return [
        "    read_only: true",
        "    cap_drop:",
        "      - ALL",
    ]


def render_stack(clients: int, client_env: list[tuple[str, str]], base: str, dataset_dir: str,
                 plaintext: bool = False, pin_agencies: bool = False) -> str:
    """The stack file for `docker stack deploy` (see the module's text)."""
    certs = os.path.join(base, "certs")
    lines = [
        f"# Generated by tools/gen_compose.py --swarm for {clients} "
        f"agenc{'y' if clients == 1 else 'ies'}; edit the generator, not this file.",
        "# Deploy with make stack-deploy (or docker stack deploy -c FILE STACK); docs/DEPLOY.md.",
        "# The server runs on the node labelled lottery.server=true, where its volume lives.",
    ]
    if plaintext:
        lines += ["# tls.mode = off (--plaintext): any peer on the network can claim any agency."]
    lines += [
        "version: '3.8'",
        "services:",
        "  server:",
        f"    image: {SERVER_IMAGE}",
        "    command: [\"--config\", \"/etc/lottery/server.toml\"]",
        "    environment:",
    ]
    if clients > 0:
        lines += [f"      - SERVER_AGENCIES={clients}"]
    if plaintext:
        lines += ["      - SERVER_TLS_MODE=off"]
    else:
        lines += [
            f"      - SERVER_TLS_CERTIFICATE={SECRETS_DIR}/server.pem",
            f"      - SERVER_TLS_PRIVATE_KEY={SECRETS_DIR}/server.key",
            f"      - SERVER_TLS_CLIENT_CA={SECRETS_DIR}/ca.pem",
            f"      - SERVER_TLS_CRL={SECRETS_DIR}/crl.pem",
            f"      - ECHO_TLS_DIR={SECRETS_DIR}",
        ]
    lines += [
        "    configs:",
        "      - source: server_toml",
        "        target: /etc/lottery/server.toml",
        "    volumes:",
        "      - type: volume",
        "        source: bets",
        "        target: /var/lib/lottery",
        "      - type: tmpfs",
        "        target: /tmp",
    ]
    if not plaintext:
        lines += ["    secrets:"]
        for name in SERVER_SECRETS:
            lines += secret_grant(certs, name, SERVER_UID)
    probe = "off" if plaintext else "server"
    lines += [
        "    networks:",
        "      - lottery_net",
        f"    stop_grace_period: {STOP_GRACE_SECONDS}s",
        *stack_hardening(),
        *healthcheck(probe),
        "    deploy:",
        "      replicas: 1",
        "      endpoint_mode: dnsrr",
        "      placement:",
        "        constraints:",
        "          - node.labels.lottery.server == true",
        "      restart_policy:",
        "        condition: on-failure",
        "        delay: 2s",
        "      resources:",
        "        limits:",
        f"          memory: {SERVER_MEMORY.upper()}",
    ]
    for i in range(1, clients + 1):
        lines += [
            f"  client{i}:",
            f"    image: {AGENCY_IMAGE}",
            "    command: [\"--config\", \"/etc/lottery/client.toml\"]",
            "    environment:",
            f"      - CLI_ID={i}",
            f"      - CLI_SERVER_ADDRESS=server:{SERVER_PORT}",
        ]
        if plaintext:
            lines += ["      - CLI_TLS_MODE=off"]
        else:
            lines += [
                f"      - CLI_TLS_CERTIFICATE={SECRETS_DIR}/agency-{i}.pem",
                f"      - CLI_TLS_PRIVATE_KEY={SECRETS_DIR}/agency-{i}.key",
                f"      - CLI_TLS_SERVER_CA={SECRETS_DIR}/ca.pem",
            ]
        lines += [f"      - {quote(f'{k}={v}')}" for k, v in client_env]
        lines += [
            "    configs:",
            "      - source: client_toml",
            "        target: /etc/lottery/client.toml",
            "    volumes:",
            "      - type: bind",
            f"        source: {quote(os.path.join(dataset_dir, f'agency-{i}.csv'))}",
            f"        target: /srv/lottery/dataset/agency-{i}.csv",
            "        read_only: true",
            "      - type: tmpfs",
            "        target: /tmp",
        ]
        if not plaintext:
            lines += ["    secrets:"]
            for name in ("ca.pem", f"agency-{i}.pem", f"agency-{i}.key"):
                lines += secret_grant(certs, name, AGENCY_UID)
        lines += [
            "    networks:",
            "      - lottery_net",
            f"    stop_grace_period: {STOP_GRACE_SECONDS}s",
            *stack_hardening(),
            "    deploy:",
            "      replicas: 1",
            "      endpoint_mode: dnsrr",
            "      restart_policy:",
            "        condition: on-failure",
            "        delay: 2s",
            "      resources:",
            "        limits:",
            f"          memory: {AGENCY_MEMORY.upper()}",
        ]
        if pin_agencies:
            lines += [
                "      placement:",
                "        constraints:",
                f"          - node.labels.lottery.agency.{i} == true",
            ]
    lines += [
        "networks:",
        "  lottery_net:",
        "    driver: overlay",
        "volumes:",
        "  bets:",
        "configs:",
        "  server_toml:",
        f"    file: {quote(os.path.join(base, 'conf', 'server.toml'))}",
        "  client_toml:",
        f"    file: {quote(os.path.join(base, 'conf', 'client.toml'))}",
    ]
    if not plaintext:
        names = list(SERVER_SECRETS)
        for i in range(1, clients + 1):
            names += [f"agency-{i}.pem", f"agency-{i}.key"]
        lines += ["secrets:"]
        for name in names:
            lines += [f"  {secret_id(certs, name)}:",
                      f"    file: {quote(os.path.join(certs, name))}"]
    return "\n".join(lines) + "\n"


def write_atomically(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".gen_compose-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="gen_compose.py",
        description="Write a docker-compose file for a lottery server and N agencies.")
    parser.add_argument("output", help="the compose file to write")
    parser.add_argument("clients", help="number of agencies, a non-negative integer (0: server only)")
    parser.add_argument("--client-env", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra environment variable for every agency (repeatable), "
                             "for example the bet of --mode bet: NOMBRE=...")
    parser.add_argument("--plaintext", action="store_true",
                        help="tls.mode = off for both programs: no certificates (any peer can "
                             "claim any agency)")
    parser.add_argument("--swarm", action="store_true",
                        help="write a stack file for `docker stack deploy` (Docker Swarm) "
                             "instead of a compose file (docs/DEPLOY.md)")
    parser.add_argument("--dataset-dir", metavar="DIR",
                        help="--swarm: the absolute folder with agency-<i>.csv on the agencies' "
                             "nodes (default: dataset/ beside OUTPUT)")
    parser.add_argument("--pin-agencies", action="store_true",
                        help="--swarm: run agency K only on nodes labelled lottery.agency.K=true")
    parser.add_argument("--allow-missing-datasets", action="store_true",
                        help="write the file even when dataset/agency-<i>.csv is missing beside "
                             "OUTPUT (each is listed as a warning); Docker would mount an empty "
                             "directory in its place")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9]+", args.clients.strip()):
        parser.error(f"N must be a non-negative integer, got {args.clients!r}")
    args.clients = int(args.clients)
    if args.clients > 1000:
        parser.error(f"N must be at most 1000 (the server's limit on agencies), got {args.clients}")
    env = []
    for item in args.client_env:
        key, sep, value = item.partition("=")
        if not sep or not ENV_NAME.match(key):
            parser.error(f"--client-env needs KEY=VALUE with a variable name as KEY, got {item!r}")
        if any(c in value for c in "\n\r\0"):
            parser.error(f"--client-env {key}: the value must be one line")
        env.append((key, value))
    args.client_env = env
    if not args.swarm and (args.dataset_dir or args.pin_agencies):
        parser.error("--dataset-dir and --pin-agencies go with --swarm")
    if args.dataset_dir is not None and not os.path.isabs(args.dataset_dir):
        parser.error(f"--dataset-dir must be an absolute path (a swarm node resolves it), "
                     f"got {args.dataset_dir!r}")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    missing = missing_datasets(args.output, args.clients, args.dataset_dir)
    if missing and not args.allow_missing_datasets:
        folder = os.path.join(os.path.dirname(args.output) or ".", "dataset")
        print(f"gen_compose.py: error: no dataset for {len(missing)} of the {args.clients} "
              f"agencies beside {args.output}: {', '.join(missing)} (Docker would mount an empty "
              f"directory in their place); make them with `python3 tools/gen_dataset.py "
              f"--agencies {args.clients} --output {folder}`, or pass --allow-missing-datasets "
              f"to mount your own files later; nothing written", file=sys.stderr)
        return EXIT_DATASETS_MISSING
    for name in missing:
        print(f"gen_compose.py: warning: {name} is missing beside {args.output}; create it "
              f"before `up`, or Docker mounts an empty directory in its place", file=sys.stderr)
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        print(f"gen_compose.py: cannot write {args.output}: no folder {folder}", file=sys.stderr)
        return 1
    try:
        notes = [] if args.plaintext else prepare_certs(args.output, args.clients)
        if args.swarm:
            base = os.path.dirname(os.path.abspath(args.output))
            text = render_stack(args.clients, args.client_env, base,
                                args.dataset_dir or os.path.join(base, "dataset"),
                                args.plaintext, args.pin_agencies)
        else:
            text = render(args.clients, args.client_env, args.plaintext)
        write_atomically(args.output, text)
    except OSError as e:
        print(f"gen_compose.py: cannot write {args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"gen_compose.py: note: {note}", file=sys.stderr)
    print(f"gen_compose.py: wrote {args.output} with {args.clients} "
          f"agenc{'y' if args.clients == 1 else 'ies'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
