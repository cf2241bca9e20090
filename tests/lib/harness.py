"""Shared machinery for the integration tests: real binaries on 127.0.0.1.

Every process is started in its own session and killed (SIGKILL to its
group) in tearDown if it is still alive, and each test checks that the
server left no worker behind.
"""
import collections
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SERVER = os.environ.get("LOTTERY_SERVER", "build/src/lottery-server")
AGENCY = os.environ.get("LOTTERY_AGENCY", "build/src/lottery-agency")
ROOT = os.environ.get("LOTTERY_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# A local timestamp, or (under journald) the syslog priority, then the level.
LOG_LINE = re.compile(r"^(?:\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} |<\d>)(DEBUG|INFO|WARNING|ERROR) "
                      r"action: (\S+) \| result: (success|fail|in_progress)(?: \| (.*))?$")

# Both programs default to tls.mode = required. The suites that test other
# things run plaintext (so that raw-protocol peers can speak to the server);
# a test asks for TLS with LotteryTest.TLS or start_server(tls=True), and
# tests of the default itself remove these variables.
os.environ.setdefault("SERVER_TLS_MODE", "off")
os.environ.setdefault("CLI_TLS_MODE", "off")
PLAINTEXT_ENV = ("SERVER_TLS_MODE", "CLI_TLS_MODE")
GEN_CERTS = os.path.join(ROOT, "tools", "gen_certs.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_certs  # noqa: E402  (the one list of each program's TLS flags)


def make_certs(directory, agencies):
    """A CA, the server's, the probe's and agencies 1..N's files (tools/gen_certs.py)."""
    subprocess.run([sys.executable, GEN_CERTS, directory, "--agencies", str(agencies)],
                   check=True, stdout=subprocess.DEVNULL)
    return directory


def server_tls_flags(certs, crl=False):
    return gen_certs.server_flags(certs, crl)


def agency_tls_flags(certs, name):
    """Flags for an agency presenting `name`.pem (agency-K, probe, server...)."""
    return gen_certs.agency_flags(certs, name)


# The protocol's constants and frames come from one place: protocol.py.
from protocol import *  # noqa: E402,F401,F403



class LogEntry(collections.namedtuple("LogEntry", "level action result fields raw")):
    pass


def parse_log(text):
    entries = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        fields = {}
        for part in (m.group(4) or "").split(" | "):
            if ": " in part:
                k, v = part.split(": ", 1)
                fields.setdefault(k, v)
        entries.append(LogEntry(m.group(1), m.group(2), m.group(3), fields, line))
    return entries


def strace_works():
    """None when the tests can trace a process with strace, else why not."""
    if "ASAN_OPTIONS" in os.environ:
        return "sanitizer build: LeakSanitizer does not work under ptrace"
    if shutil.which("strace") is None:
        return "strace is not installed"
    r = subprocess.run(["strace", "-f", "-o", os.devnull, "true"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"strace cannot trace here: {r.stderr.strip()}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_agency_file(path, bets):
    """bets: iterable of (first, last, document, birthdate, number)."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        for b in bets:
            w.writerow([b[0], b[1], b[2], b[3], str(b[4])])


def read_bets_file(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [tuple(r) for r in csv.reader(f)]


def make_bets(agency, count, winners=0, start_doc=None, number=7574):
    """count bets of which exactly `winners` carry the winning number."""
    base = start_doc if start_doc is not None else 10_000_000 + agency * 1_000_000
    names = ["José", "María José", "Núñez, hijo", 'Ana "la" Rubia', "D'Alessandro", "Pipe|Name"]
    bets = []
    for i in range(count):
        n = number if i < winners else (i * 37 + agency) % 10000
        if n == number and i >= winners:
            n = (n + 1) % 10000
        bets.append((names[i % len(names)], f"Apellido{agency}-{i}", str(base + i),
                     f"{1950 + i % 50}-0{1 + i % 9}-1{i % 9}", n))
    return bets


# --- processes -------------------------------------------------------------

def live_processes():
    """(pid, ppid, pgid) of every process that is not a zombie (/proc/PID/stat)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z":
            out.append((int(entry), int(fields[1]), int(fields[2])))
    return out


def children_of(pid):
    return [p for p, ppid, _ in live_processes() if ppid == pid]


class Proc:
    def __init__(self, argv, workdir, name, env=None):
        self.name = name
        self.out_path = os.path.join(workdir, f"{name}.out")
        self.err_path = os.path.join(workdir, f"{name}.log")
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.popen = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                          env=full_env, start_new_session=True)
        self.pid = self.popen.pid

    def log(self):
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def entries(self):
        return parse_log(self.log())

    def stdout(self):
        with open(self.out_path, encoding="utf-8") as f:
            return f.read()

    def wait(self, timeout=60):
        return self.popen.wait(timeout=timeout)

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        self.popen.send_signal(sig)

    def kill(self):
        if self.popen.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait()


class LotteryTest(unittest.TestCase):
    """Base class: a temp dir, process bookkeeping, server and agency starters."""

    # Rounds over mutual TLS, with a fresh certificate set per test.
    TLS = False

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lottery-it-")
        self.dir = self._tmp.name
        self.procs = []
        self.server = None
        self.certs = None

    def ensure_certs(self, agencies):
        """The test's certificate set, with at least `agencies` agencies."""
        self.certs = make_certs(self.path("certs"), max(agencies, 1))
        return self.certs

    def tearDown(self):
        leftovers = []
        if self.server is not None:
            self.server.kill()
            leftovers = children_of(self.server.pid)
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs:
            p.kill()
        self._tmp.cleanup()
        self.assertEqual(leftovers, [], "server workers left behind")

    def path(self, name):
        return os.path.join(self.dir, name)

    def start_server(self, agencies=3, extra=(), env=None, name="server", port=None, tls=None):
        tls = self.TLS if tls is None else tls
        tls_flags = server_tls_flags(self.ensure_certs(agencies)) if tls else []
        for _ in range(5):
            self.port = port or free_port()
            argv = [SERVER, "--address", "127.0.0.1", "--port", str(self.port),
                    "--agencies", str(agencies), "--storage", self.path("bets.csv"), *tls_flags,
                    *extra]
            p = Proc(argv, self.dir, name, env)
            self.procs.append(p)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                # Bound, then recovered: "ready" follows both.
                if "action: ready | result: success" in p.log():
                    self.server = p
                    return p
                if not p.alive():
                    break
                time.sleep(0.02)
            if p.alive() or p.popen.returncode != 71:
                self.fail(f"server did not start:\n{p.log()}")
        self.fail("no free port")

    def start_agency(self, agency, dataset=None, batch=100, mode=None, env=None, extra=(),
                     name=None):
        argv = [AGENCY, "--id", str(agency), "--server", f"127.0.0.1:{self.port}",
                "--batch", str(batch)]
        if self.certs is not None and "--tls-mode" not in extra:
            argv += agency_tls_flags(self.certs, f"agency-{agency}")
        argv += list(extra)
        if dataset is not None:
            argv += ["--dataset", dataset]
        if mode:
            argv += ["--mode", mode]
        p = Proc(argv, self.dir, name or f"agency-{agency}", env)
        self.procs.append(p)
        return p

    def agency_file(self, agency, bets):
        path = self.path(f"agency-{agency}.csv")
        write_agency_file(path, bets)
        return path

    def wait_log(self, proc, predicate, timeout=30, what="log line"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = proc.entries()
            if predicate(entries):
                return entries
            time.sleep(0.02)
        self.fail(f"timed out waiting for {what} in {proc.name}:\n{proc.log()[-4000:]}")

    def count(self, entries, action, result="success"):
        return sum(1 for e in entries if e.action == action and e.result == result)

    def raw(self):
        c = RawClient(self.port)
        self.addCleanup(c.close)
        return c

    def reintroduce(self, agency, timeout=20):
        """A new connection that says HELLO as `agency` once the server has
        let go of the agency's previous connection: until then the worker
        answers BUSY, and while exited workers wait to be reaped the parent
        may answer TOO_MANY_CONNECTIONS (both say "try again"). Returns the
        client and the decoded WELCOME."""
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            c = self.raw()
            c.send(hello(agency))
            kind, payload = c.read()
            if kind == WELCOME:
                return c, decode_welcome(payload)
            self.assertIn(decode_error(payload)[0], (E_BUSY, E_TOO_MANY))
            self.assertLess(time.monotonic(), deadline, "the agency's slot was never freed")
            c.close()
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def bets_file(self):
        return read_bets_file(self.path("bets.csv"))

    def expected_rows(self, per_agency):
        rows = collections.Counter()
        for agency, bets in per_agency.items():
            for b in bets:
                rows[(str(agency), b[0], b[1], b[2], b[3], str(b[4]))] += 1
        return rows
