"""The docker suite: the images and the generated compose file in a real engine.

Each test writes its own conf/ and dataset/ into a temporary directory,
generates a compose file there with tools/gen_compose.py (compose resolves the
mounts relative to that file), brings the project up, follows `logs -f`,
asserts on what the containers logged and how they exited, and tears
everything down: containers, network and volumes.

Without a reachable Docker engine the whole file exits 77, which meson reports
as skipped. The images are built first (cached layers make that quick when
nothing changed); DOCKER_BUILD_FLAGS passes flags such as `--network host`.
Container names are fixed (server, client1..N) and the subnet is fixed, so the
tests run one at a time (meson: is_parallel false).
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import harness  # noqa: E402  (parse_log, make_bets, write_agency_file, read_bets_file)

ROOT = harness.ROOT
PROJECT = "lotterytest"
NETWORK = f"{PROJECT}_testing_net"
SERVER_IMAGE = "lottery-server:latest"
AGENCY_IMAGE = "lottery-agency:latest"
STANDIN = "server"          # the stand-in takes the server's name and host name
WINNING = 7574


def run(argv, timeout=120, check=True, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          check=check, **kw)


def engine_problem():
    """None when an engine answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        r = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return "docker info timed out"
    if r.returncode != 0 or not r.stdout.strip():
        last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "no answer"
        return f"no Docker engine reachable ({last})"
    return None


def compose_command():
    if run(["docker", "compose", "version"], check=False, timeout=20).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


COMPOSE = None


def build_images():
    flags = shlex.split(os.environ.get("DOCKER_BUILD_FLAGS", ""))
    for dockerfile, tag in (("docker/server.Dockerfile", SERVER_IMAGE),
                            ("docker/agency.Dockerfile", AGENCY_IMAGE)):
        r = run(["docker", "build", *flags, "-q", "-f", dockerfile, "-t", tag, "."],
                timeout=1800, check=False, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(f"docker build {dockerfile} failed:\n{r.stdout[-3000:]}")


def image_id(tag):
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip()


def remove_leftovers():
    """Containers, network and volume of this suite from an earlier, killed run.
    Only what carries this suite's labels: a user's own deployment is left alone."""
    for label in (f"com.docker.compose.project={PROJECT}", "lotterytest.standin=1"):
        ids = run(["docker", "ps", "-aq", "--filter", f"label={label}"]).stdout.split()
        if ids:
            run(["docker", "rm", "-f", *ids], check=False)
    run(["docker", "network", "rm", NETWORK], check=False)
    run(["docker", "volume", "rm", f"{PROJECT}_bets"], check=False)


def name_clashes():
    """Containers of someone else that hold the fixed names the suite needs."""
    return [c for c in run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
            if c == "server" or re.fullmatch(r"client\d+", c)]


def set_toml(path, section, key, value):
    """Replaces `key = ...` inside [section] of a TOML file (value given as TOML text)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    current, done = None, False
    for i, line in enumerate(lines):
        m = re.match(r"^\[(\w+)\]\s*$", line)
        if m:
            current = m.group(1)
        elif current == section and re.match(rf"^{key}\s*=", line):
            lines[i] = f"{key} = {value}"
            done = True
    if not done:
        raise KeyError(f"{section}.{key} not in {path}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))


def drop_toml_key(path, section, key):
    """Removes `key = ...` (and the comment block just above it) from [section]."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    current, out, found = None, [], False
    for line in lines:
        m = re.match(r"^\[(\w+)\]\s*$", line)
        if m:
            current = m.group(1)
        elif current == section and re.match(rf"^{key}\s*=", line):
            found = True
            while out and out[-1].startswith("#"):
                out.pop()
            continue
        out.append(line)
    if not found:
        raise KeyError(f"{section}.{key} not in {path}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def toml_str(text):
    return '"' + text + '"'


def lines_of(text, action, result=None):
    return [e for e in harness.parse_log(text)
            if e.action == action and (result is None or e.result == result)]


class Deployment:
    """One compose project in a temporary directory: conf/, dataset/, the
    generated compose file and the followed logs. Always call down()."""

    def __init__(self, clients, client_env=(), plaintext=False):
        self.dir = tempfile.mkdtemp(prefix="lottery-docker-")
        self.certs = os.path.join(self.dir, "certs")
        os.chmod(self.dir, 0o755)
        self.clients = clients
        os.makedirs(os.path.join(self.dir, "conf"))
        os.makedirs(os.path.join(self.dir, "dataset"))
        for name in ("server.toml", "client.toml"):
            dst = os.path.join(self.dir, "conf", name)
            shutil.copyfile(os.path.join(ROOT, "conf", name), dst)
            os.chmod(dst, 0o644)
        # Until a test writes its own, every agency has an empty dataset.
        for i in range(1, clients + 1):
            self.write_dataset(i, [])
        self.compose_file = os.path.join(self.dir, "docker-compose.yaml")
        argv = [sys.executable, os.path.join(ROOT, "tools", "gen_compose.py"),
                self.compose_file, str(clients)]
        for item in client_env:
            argv += ["--client-env", item]
        if plaintext:
            argv.append("--plaintext")
        run(argv)
        self.follower = None
        self.follow_path = os.path.join(self.dir, "logs-f.txt")

    # --- configuration ----------------------------------------------------
    def server_conf(self, section, key, value):
        set_toml(os.path.join(self.dir, "conf", "server.toml"), section, key, value)

    def drop_server_conf(self, section, key):
        drop_toml_key(os.path.join(self.dir, "conf", "server.toml"), section, key)

    def client_conf(self, section, key, value):
        set_toml(os.path.join(self.dir, "conf", "client.toml"), section, key, value)

    def write_conf(self, name, text):
        """Replaces conf/NAME with `text`: an operator's own file."""
        path = os.path.join(self.dir, "conf", name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o644)

    def write_dataset(self, agency, bets):
        path = os.path.join(self.dir, "dataset", f"agency-{agency}.csv")
        harness.write_agency_file(path, bets)
        os.chmod(path, 0o644)

    # --- lifecycle --------------------------------------------------------
    def compose(self, *args, timeout=180, check=True):
        return run([*COMPOSE, "-p", PROJECT, "-f", self.compose_file, *args],
                   timeout=timeout, check=check)

    def up(self):
        r = self.compose("up", "-d", check=False)
        if r.returncode != 0:
            raise AssertionError(f"compose up failed:\n{r.stdout}")
        self._follow()

    def _follow(self):
        self._stop_following()
        out = open(self.follow_path, "a", encoding="utf-8")
        self.follower = subprocess.Popen(
            [*COMPOSE, "-p", PROJECT, "-f", self.compose_file, "logs", "-f", "--no-color"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def _stop_following(self):
        if self.follower is not None:
            if self.follower.poll() is None:
                self.follower.terminate()
                try:
                    self.follower.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.follower.kill()
                    self.follower.wait()
            self.follower = None

    def followed(self, container):
        """What `logs -f` showed for one container, prefix removed."""
        if not os.path.exists(self.follow_path):
            return ""
        out = []
        with open(self.follow_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^(\S+)\s+\| ?(.*)$", line.rstrip("\n"))
                if m and m.group(1) == container:
                    out.append(m.group(2))
        return "\n".join(out)

    def wait_for_followed(self, container, text, timeout=30):
        deadline = time.monotonic() + timeout
        while text not in self.followed(container):
            if time.monotonic() > deadline:
                raise AssertionError(f"`logs -f` showed no {text!r} for {container}:\n"
                                     f"{self.followed(container)[-2000:]}")
            time.sleep(0.5)

    def down(self):
        if self.dir is None:
            return
        try:
            self.compose("stop", "-t", "10", check=False)
            self.compose("down", "--volumes", "--remove-orphans", check=False)
        finally:
            self._stop_following()
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # --- observation ------------------------------------------------------
    def wait_exit(self, names, timeout=120):
        """Waits for the containers to stop; returns {name: exit code}."""
        r = run(["docker", "wait", *names], timeout=timeout)
        return dict(zip(names, (int(x) for x in r.stdout.split())))

    def wait_for_log(self, container, pattern, count=1, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, logs(container))) >= count:
                return
            time.sleep(0.5)
        raise AssertionError(f"{container} did not log {pattern!r} x{count} in {timeout}s:\n"
                             f"{logs(container)[-3000:]}")

    def bets_file(self):
        dst = os.path.join(self.dir, "bets-copy.csv")
        run(["docker", "cp", "server:/var/lib/lottery/bets.csv", dst])
        return harness.read_bets_file(dst)


def logs(container):
    return run(["docker", "logs", container], check=False).stdout


def state(container, field):
    return run(["docker", "inspect", "--format", "{{" + field + "}}", container],
               check=False).stdout.strip()


def validate_echo(env=None):
    full = dict(os.environ)
    full.update(env or {})
    started = time.monotonic()
    r = subprocess.run([os.path.join(ROOT, "tools", "validate-echo-server.sh")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=60, env=full)
    return r.returncode, r.stdout, time.monotonic() - started


class DockerTestCase(unittest.TestCase):
    def deploy(self, clients, client_env=(), plaintext=False):
        d = Deployment(clients, client_env, plaintext)
        self.addCleanup(d.down)
        return d

    def assert_exit_codes(self, codes, expected=0):
        for name, code in codes.items():
            self.assertEqual(code, expected, f"{name} exited {code}:\n{logs(name)[-3000:]}")


class EchoTest(DockerTestCase):
    def test_echo_clients_and_messages(self):
        for clients in (1, 2, 5):
            for amount in (1, 3):
                with self.subTest(clients=clients, messages=amount):
                    d = self.deploy(clients)
                    d.client_conf("agency", "mode", toml_str("echo"))
                    d.client_conf("loop", "amount", str(amount))
                    d.client_conf("loop", "period", toml_str("200ms"))
                    d.up()
                    names = [f"client{i}" for i in range(1, clients + 1)]
                    self.assert_exit_codes(d.wait_exit(names))
                    for i, name in enumerate(names, 1):
                        text = logs(name)
                        msgs = [e.fields.get("msg") for e in lines_of(text, "receive_message", "success")]
                        self.assertEqual(msgs, [f"[CLIENT {i}] Message N°{k}" for k in range(1, amount + 1)],
                                         text)
                        self.assertEqual(len(lines_of(text, "loop_finished", "success")), 1, text)
                    # The server echoed every message and is still serving (its
                    # own health check echoes too, from 127.0.0.1).
                    server_msgs = lines_of(logs("server"), "receive_message", "success")
                    self.assertEqual(len([e for e in server_msgs
                                          if e.fields.get("msg", "").startswith("[CLIENT")
                                          and not e.fields.get("ip", "").startswith("127.")]),
                                     clients * amount)
                    self.assertEqual(state("server", ".State.Running"), "true")
                    # `logs -f` shows the clients' lines too.
                    for name in names:
                        d.wait_for_followed(name, "action: loop_finished")
                    d.down()


class ConfigTest(DockerTestCase):
    def test_changed_mounted_config_applies_on_next_up_without_rebuild(self):
        images = (image_id(SERVER_IMAGE), image_id(AGENCY_IMAGE))
        d = self.deploy(1)
        d.client_conf("agency", "mode", toml_str("echo"))
        d.client_conf("loop", "amount", "2")
        d.client_conf("loop", "period", toml_str("100ms"))
        d.client_conf("log", "level", toml_str("INFO"))
        d.server_conf("server", "listen_backlog", "64")
        d.server_conf("log", "level", toml_str("INFO"))
        d.up()
        self.assert_exit_codes(d.wait_exit(["client1"]))
        client = lines_of(logs("client1"), "config", "success")[0].fields
        server = lines_of(logs("server"), "config", "success")[0].fields
        self.assertEqual((client["loop_amount"], client["loop_period"], client["log_level"]),
                         ("2", "100ms", "INFO"))
        self.assertEqual((server["listen_backlog"], server["logging_level"]), ("64", "INFO"))
        self.assertEqual(len(lines_of(logs("client1"), "receive_message", "success")), 2)
        self.assertFalse(any(e.level == "DEBUG" for e in harness.parse_log(logs("server"))))
        d.compose("stop", "-t", "10")
        d.compose("down", "--volumes")

        d.client_conf("loop", "amount", "4")
        d.client_conf("loop", "period", toml_str("250ms"))
        d.client_conf("log", "level", toml_str("DEBUG"))
        d.server_conf("server", "listen_backlog", "17")
        d.server_conf("log", "level", toml_str("DEBUG"))
        d.up()
        self.assert_exit_codes(d.wait_exit(["client1"]))
        client = lines_of(logs("client1"), "config", "success")[0].fields
        server = lines_of(logs("server"), "config", "success")[0].fields
        self.assertEqual((client["loop_amount"], client["loop_period"], client["log_level"]),
                         ("4", "250ms", "DEBUG"))
        self.assertEqual((server["listen_backlog"], server["logging_level"]), ("17", "DEBUG"))
        self.assertEqual(len(lines_of(logs("client1"), "receive_message", "success")), 4)
        # The server's DEBUG really is in effect, not only printed.
        self.assertTrue(any(e.level == "DEBUG" for e in harness.parse_log(logs("server"))))
        self.assertEqual((image_id(SERVER_IMAGE), image_id(AGENCY_IMAGE)), images,
                         "the images changed: the config must not need a rebuild")


class HealthCheckTest(DockerTestCase):
    def test_success_against_the_server_and_its_compose_healthcheck(self):
        d = self.deploy(0)
        d.up()
        deadline = time.monotonic() + 60
        while state("server", ".State.Health.Status") != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
        self.assertEqual(state("server", ".State.Health.Status"), "healthy", logs("server"))
        # The health check spoke TLS with the server's own certificate.
        self.assertTrue([e for e in lines_of(logs("server"), "tls_handshake", "success")
                         if e.fields.get("subject") == "/CN=server"], logs("server"))
        code, out, _ = validate_echo({"ECHO_TLS_DIR": d.certs})
        self.assertEqual(out, "action: test_echo_server | result: success\n")
        self.assertEqual(code, 0)
        # The probe's ECHO reached the server through the compose network,
        # over TLS with the probe certificate.
        probes = [e for e in lines_of(logs("server"), "tls_handshake", "success")
                  if e.fields.get("subject") == "/CN=probe" and not e.fields.get("ip", "").startswith("127.")]
        self.assertTrue(probes, logs("server"))
        echoes = [e for e in lines_of(logs("server"), "receive_message", "success")
                  if not e.fields.get("ip", "").startswith("127.")]
        self.assertTrue(echoes, logs("server"))
        # Without the probe certificate the check cannot even start.
        code, out, _ = validate_echo({"ECHO_TLS_DIR": os.path.join(d.dir, "nowhere")})
        self.assertEqual(out, "action: test_echo_server | result: fail\n")

        # A stopped server is a fail, promptly.
        run(["docker", "stop", "-t", "10", "server"])
        code, out, took = validate_echo({"ECHO_TLS_DIR": d.certs})
        self.assertEqual(out, "action: test_echo_server | result: fail\n")
        self.assertEqual(code, 1)
        self.assertLess(took, 40)

    def test_plaintext_compose_file_checks_and_validates_without_tls(self):
        d = self.deploy(0, plaintext=True)
        d.up()
        deadline = time.monotonic() + 60
        while state("server", ".State.Health.Status") != "healthy" and time.monotonic() < deadline:
            time.sleep(1)
        self.assertEqual(state("server", ".State.Health.Status"), "healthy", logs("server"))
        self.assertTrue([e for e in lines_of(logs("server"), "tls", "in_progress")
                         if e.level == "WARNING"], logs("server"))
        code, out, _ = validate_echo({"ECHO_TLS_MODE": "off"})
        self.assertEqual((code, out), (0, "action: test_echo_server | result: success\n"))

    def test_fail_against_a_stand_in_that_answers_something_else(self):
        d = self.deploy(0)
        d.compose("up", "--no-start")       # the network only; the server is replaced
        run(["docker", "rm", "-f", "server"])
        # A plaintext lottery server stands in: it does not speak TLS.
        run(["docker", "run", "-d", "--name", STANDIN, "--label", "lotterytest.standin=1",
             "--network", NETWORK, SERVER_IMAGE, "--tls-mode", "off", "--agencies", "1",
             "--log-level", "DEBUG"])
        self.addCleanup(lambda: run(["docker", "rm", "-f", STANDIN], check=False))
        time.sleep(1)
        code, out, took = validate_echo({"ECHO_TLS_DIR": d.certs})
        self.assertEqual(out, "action: test_echo_server | result: fail\n")
        self.assertEqual(code, 1)
        self.assertLess(took, 40)
        # It failed on the answer: the stand-in did receive the request, a
        # TLS handshake record (0x16) it cannot read.
        self.assertIn("unknown message type 0x16", logs(STANDIN))


class GracefulStopTest(DockerTestCase):
    def long_echo(self, clients):
        d = self.deploy(clients)
        d.client_conf("agency", "mode", toml_str("echo"))
        d.client_conf("loop", "amount", "100000")
        d.client_conf("loop", "period", toml_str("200ms"))
        d.up()
        for i in range(1, clients + 1):
            d.wait_for_log(f"client{i}", r"action: receive_message \| result: success", count=2)
        return d

    def test_docker_stop_client_then_server(self):
        d = self.long_echo(2)
        run(["docker", "stop", "-t", "10", "client1"], timeout=60)
        self.assertEqual(state("client1", ".State.ExitCode"), "0", logs("client1"))
        self.assertTrue(lines_of(logs("client1"), "shutdown", "success"), logs("client1"))
        self.assertEqual(state("server", ".State.Running"), "true")
        self.assertEqual(state("client2", ".State.Running"), "true")

        run(["docker", "stop", "-t", "10", "server"], timeout=60)
        self.assertEqual(state("server", ".State.ExitCode"), "0", logs("server"))
        text = logs("server")
        self.assertTrue(lines_of(text, "shutdown", "in_progress"), text)
        self.assertTrue(lines_of(text, "exit", "success"), text)
        self.assertIn("resource: workers", text)
        # SIGTERM, not the SIGKILL after the grace period.
        self.assertEqual(state("server", ".State.OOMKilled"), "false")

    def test_make_docker_compose_down(self):
        d = self.long_echo(2)
        names = ["server", "client1", "client2"]
        waiter = subprocess.Popen(["docker", "wait", *names], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        bets_out = os.path.join(d.dir, "saved", "bets.csv")
        r = run(["make", "-s", "-C", ROOT, "docker-compose-down",
                 f"COMPOSE_FILE={d.compose_file}", f"COMPOSE_PROJECT={PROJECT}",
                 f"BETS_OUT={bets_out}"], timeout=180, check=False)
        self.assertEqual(r.returncode, 0, r.stdout)
        out, _ = waiter.communicate(timeout=60)
        codes = dict(zip(names, (int(x) for x in out.split())))
        self.assertEqual(codes, {n: 0 for n in names}, out)
        d._stop_following()
        for client in ("client1", "client2"):
            self.assertTrue(lines_of(d.followed(client), "shutdown", "success"), d.followed(client))
        server = d.followed("server")
        self.assertTrue(lines_of(server, "exit", "success"), server)
        self.assertTrue(os.path.exists(bets_out), r.stdout)
        # Everything is gone.
        left = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
        self.assertFalse(set(left) & set(names), left)
        self.assertNotEqual(run(["docker", "volume", "inspect", f"{PROJECT}_bets"], check=False).returncode, 0)


class BetTest(DockerTestCase):
    def test_single_bet_from_the_environment(self):
        d = self.deploy(1, client_env=["NOMBRE=Santiago Lionel", "APELLIDO=Lorca",
                                       "DOCUMENTO=30904465", "NACIMIENTO=1999-03-17",
                                       "NUMERO=7574"])
        d.client_conf("agency", "mode", toml_str("bet"))
        d.server_conf("server", "agencies", "1")
        d.up()
        self.assert_exit_codes(d.wait_exit(["client1"]))
        sent = lines_of(logs("client1"), "apuesta_enviada", "success")
        self.assertEqual(len(sent), 1, logs("client1"))
        d.wait_for_log("server", r"action: apuesta_almacenada \| result: success")
        stored = lines_of(logs("server"), "apuesta_almacenada", "success")
        self.assertEqual(len(stored), 1)
        self.assertEqual(sent[0].fields["dni"], "30904465")
        self.assertEqual(stored[0].fields["dni"], sent[0].fields["dni"])
        self.assertEqual(stored[0].fields["numero"], sent[0].fields["numero"])
        self.assertEqual(d.bets_file(), [("1", "Santiago Lionel", "Lorca", "30904465", "1999-03-17", "7574")])


class BatchTest(DockerTestCase):
    def test_batches_arrive_whole_and_in_one_frame_when_they_fit(self):
        for max_amount, sizes in ((64, (64, 16)), (99, (99, 21))):
            with self.subTest(max_amount=max_amount, sizes=sizes):
                d = self.deploy(2)
                d.server_conf("server", "agencies", "2")
                d.client_conf("batch", "max_amount", str(max_amount))
                sent = {}
                for agency, count in enumerate(sizes, 1):
                    sent[agency] = harness.make_bets(agency, count, winners=1)
                    d.write_dataset(agency, sent[agency])
                d.up()
                self.assert_exit_codes(d.wait_exit(["client1", "client2"]))
                stored = d.bets_file()
                for agency, count in enumerate(sizes, 1):
                    mine = [r[1:] for r in stored if r[0] == str(agency)]
                    self.assertEqual(mine, [(b[0], b[1], b[2], b[3], str(b[4])) for b in sent[agency]])
                    batches = [e for e in lines_of(logs("server"), "apuesta_recibida", "success")
                               if e.fields.get("agency") == str(agency)]
                    self.assertEqual([e.fields["cantidad"] for e in batches], [str(count)],
                                     f"agency {agency}: {[e.raw for e in batches]}")
                d.down()


class LotteryTest(DockerTestCase):
    def round(self, winners, config_names_agencies=True):
        n = len(winners)
        d = self.deploy(n)
        if config_names_agencies:
            d.server_conf("server", "agencies", str(n))
        else:
            # As the course's server config: no agency count at all. The
            # generated file's SERVER_AGENCIES must be what the server uses
            # (the built-in default is 5).
            d.drop_server_conf("server", "agencies")
        d.server_conf("draw", "winning_number", str(WINNING))
        d.client_conf("batch", "max_amount", "50")
        for agency, w in enumerate(winners, 1):
            d.write_dataset(agency, harness.make_bets(agency, 120 + 17 * agency, winners=w, number=WINNING))
        d.up()
        names = [f"client{i}" for i in range(1, n + 1)]
        self.assert_exit_codes(d.wait_exit(names))
        d.wait_for_log("server", r"action: winners_sent", count=n)
        text = logs("server")
        entries = harness.parse_log(text)
        draws = [k for k, e in enumerate(entries) if e.action == "sorteo" and e.result == "success"]
        self.assertEqual(len(draws), 1, text)
        received = [k for k, e in enumerate(entries) if e.action == "apuesta_recibida"]
        self.assertTrue(received)
        self.assertLess(max(received), draws[0], "a batch arrived after the draw")
        for i, w in enumerate(winners, 1):
            got = lines_of(logs(f"client{i}"), "consulta_ganadores", "success")
            self.assertEqual([e.fields["cant_ganadores"] for e in got], [str(w)], logs(f"client{i}"))
        self.assertEqual(len(d.bets_file()), sum(120 + 17 * a for a in range(1, n + 1)))
        config = lines_of(text, "config", "success")
        self.assertTrue(config and config[0].fields.get("agencies") == str(n), text[:2000])

    def test_two_rounds_with_lotteryctl_open_between(self):
        d = self.deploy(2)
        d.server_conf("draw", "winning_number", str(WINNING))
        first = {a: harness.make_bets(a, 150, winners=a, number=WINNING) for a in (1, 2)}
        for agency, bets in first.items():
            d.write_dataset(agency, bets)
        d.up()
        names = ["client1", "client2"]
        self.assert_exit_codes(d.wait_exit(names))
        opened = run(["docker", "exec", "server", "lotteryctl", "open"], check=False)
        self.assertEqual(opened.returncode, 0, opened.stdout)
        # The next round: new datasets, the same client containers run again.
        second = {a: harness.make_bets(a, 90, winners=3 - a, number=WINNING, start_doc=70_000_000)
                  for a in (1, 2)}
        for agency, bets in second.items():
            d.write_dataset(agency, bets)
        run(["docker", "start", *names])
        self.assert_exit_codes(d.wait_exit(names))
        for i in (1, 2):
            got = lines_of(logs(f"client{i}"), "consulta_ganadores", "success")
            self.assertEqual([e.fields["cant_ganadores"] for e in got], [str(i), str(3 - i)],
                             logs(f"client{i}"))
        self.assertEqual(len(d.bets_file()), 180)
        rounds = run(["docker", "exec", "server", "lotteryctl", "--json", "rounds"], check=False)
        self.assertEqual(rounds.returncode, 0, rounds.stdout)
        listed = [(r["round"], r["state"], r["bets"]) for r in json.loads(rounds.stdout)["rounds"]]
        self.assertEqual(listed, [(1, "archived", 300), (2, "drawn", 180)])
        verified = run(["docker", "exec", "server", "lotteryctl", "verify", "1"], check=False)
        self.assertEqual(verified.returncode, 0, verified.stdout)

    def test_three_agencies(self):
        self.round([2, 1, 0])

    def test_five_agencies(self):
        self.round([1, 2, 3, 4, 5])

    def test_three_agencies_with_a_server_config_that_names_no_agency_count(self):
        self.round([1, 0, 2], config_names_agencies=False)

    def test_config_files_that_name_no_tls_key_still_give_a_mutual_tls_round(self):
        # An operator's own files with only the keys they care about: the
        # TLS paths have no built-in default, the compose file's environment
        # names the mounted certificates.
        d = self.deploy(2)
        d.write_conf("server.toml", "[server]\nport = 12345\nlisten_backlog = 64\n\n"
                     f"[draw]\nwinning_number = {WINNING}\n\n[log]\nlevel = \"INFO\"\n")
        d.write_conf("client.toml", "[batch]\nmax_amount = 50\n\n[loop]\namount = 3\n"
                     "period = \"1s\"\n\n[log]\nlevel = \"INFO\"\n")
        for agency in (1, 2):
            d.write_dataset(agency, harness.make_bets(agency, 80, winners=agency, number=WINNING))
        d.up()
        names = ["client1", "client2"]
        self.assert_exit_codes(d.wait_exit(names))
        d.wait_for_log("server", r"action: winners_sent", count=2)
        entries = harness.parse_log(logs("server"))
        subjects = sorted(e.fields.get("subject") for e in entries
                          if e.action == "tls_handshake" and e.result == "success"
                          and e.fields.get("agency") in ("1", "2"))
        self.assertEqual(sorted(set(subjects)), ["/CN=agency-1", "/CN=agency-2"], logs("server"))
        self.assertFalse([e for e in entries if e.action == "tls" and e.level == "WARNING"],
                         "the server ran without TLS")
        for i in (1, 2):
            text = logs(f"client{i}")
            self.assertTrue(lines_of(text, "tls_handshake", "success"), text)
            got = lines_of(text, "consulta_ganadores", "success")
            self.assertEqual([e.fields["cant_ganadores"] for e in got], [str(i)], text)
        self.assertEqual(len(d.bets_file()), 160)


def main():
    global COMPOSE
    problem = engine_problem()
    if problem:
        print(f"SKIP: {problem}; the docker suite needs an engine "
              "(on the CI machines: ../shared/tools/docker-engine.sh start)")
        return 77
    COMPOSE = compose_command()
    if COMPOSE is None:
        print("SKIP: neither `docker compose` nor `docker-compose` is installed")
        return 77
    remove_leftovers()
    clashes = name_clashes()
    if clashes:
        print(f"FAIL: containers {', '.join(clashes)} already exist (another compose project, "
              "e.g. make docker-compose-up); the suite needs those names: "
              "run make docker-compose-down first")
        return 1
    build_images()
    try:
        prog = unittest.main(module=__name__, argv=[sys.argv[0], "-v", *sys.argv[1:]], exit=False)
    finally:
        remove_leftovers()
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
