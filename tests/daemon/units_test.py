"""The systemd units: systemd-analyze verify accepts them, they say what the
service needs, and what the server really does (traced with strace through a
whole round, a reload and a stop) fits inside their sandbox."""
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402
from harness import make_bets  # noqa: E402

CONF = os.path.join(dh.harness.ROOT, "conf")
SERVICE = os.path.join(CONF, "lottery-server.service")
SOCKET = os.path.join(CONF, "lottery-server.socket")


def parse_unit(path):
    """{section: {key: [values]}} of a unit file."""
    sections = collections.defaultdict(lambda: collections.defaultdict(list))
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            key, value = line.split("=", 1)
            sections[section][key.strip()].append(value.strip())
    return sections


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|min)?", text)
    value = int(m.group(1))
    return {"ms": value / 1000, "s": value, "min": value * 60, None: value}[m.group(2)]


def expand_syscall_group(group):
    """Every system call name a SystemCallFilter= group allows."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                         check=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip())
    allowed, pending, seen = set(), [group], set()
    while pending:
        g = pending.pop()
        if g in seen:
            continue
        seen.add(g)
        for member in groups.get(g, []):
            if member.startswith("@"):
                pending.append(member)
            else:
                allowed.add(member)
    return allowed


class UnitsTest(dh.DaemonTest):

    def test_systemd_analyze_verify_accepts_both_units(self):
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as d:
            # verify checks that ExecStart= exists: point it at this build.
            with open(SERVICE) as f:
                text = f.read().replace("/usr/bin/lottery-server", os.path.abspath(dh.SERVER))
            with open(os.path.join(d, "lottery-server.service"), "w") as f:
                f.write(text)
            shutil.copy(SOCKET, d)
            # --man=no: the man page is not installed on the test machine.
            r = subprocess.run(["systemd-analyze", "verify", "--man=no",
                                os.path.join(d, "lottery-server.service"),
                                os.path.join(d, "lottery-server.socket")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # Unknown keys and bad values are only warnings: none allowed.
            self.assertEqual((r.stdout + r.stderr).strip(), "")

    def test_the_service_unit_says_what_the_daemon_needs(self):
        unit = parse_unit(SERVICE)["Service"]
        one = {k: v[-1] for k, v in unit.items()}
        self.assertEqual(one["Type"], "notify")
        self.assertTrue(one["ExecStart"].endswith("/lottery-server --config /etc/lottery/server.toml"))
        self.assertIn("--check-config --config /etc/lottery/server.toml", one["ExecStartPre"])
        self.assertEqual(one["ExecReload"], "kill -HUP $MAINPID")
        self.assertEqual(one["KillMode"], "mixed")
        self.assertEqual(one["Restart"], "on-failure")
        self.assertEqual(one["StateDirectory"], "lottery")
        # The control socket's directory (lotteryctl): /run/lottery.
        self.assertEqual(one["RuntimeDirectory"], "lottery")
        self.assertEqual(one["WorkingDirectory"], "/var/lib/lottery")
        for key in ("DynamicUser", "NoNewPrivileges", "ProtectHome", "PrivateTmp",
                    "PrivateDevices", "LockPersonality", "MemoryDenyWriteExecute"):
            self.assertEqual(one[key], "yes", key)
        self.assertEqual(one["ProtectSystem"], "strict")
        self.assertEqual(set(one["RestrictAddressFamilies"].split()), {"AF_INET", "AF_INET6",
                                                                        "AF_UNIX"})
        self.assertEqual(unit["SystemCallFilter"], ["@system-service", "~@privileged @resources"])
        self.assertEqual(one["ProcSubset"], "pid")
        self.assertEqual(one["IPAddressDeny"], "any")
        self.assertIn("localhost", one["IPAddressAllow"].split())
        # The key comes as a credential, named where the server reads it.
        self.assertEqual(one["LoadCredential"], "server.key:/etc/lottery/tls/server.key")
        self.assertIn("SERVER_TLS_PRIVATE_KEY=%d/server.key", unit["Environment"])
        self.assertEqual(set(one["RestartPreventExitStatus"].split()), {"64", "75", "78"})
        # The stop timeout leaves the server its own shutdown time and more.
        with open(os.path.join(CONF, "server.toml"), "rb") as f:
            server = tomllib.load(f)["server"]
        self.assertGreater(seconds(one["TimeoutStopSec"]),
                           seconds(server["shutdown_timeout"]) + 2)
        # The watchdog interval is far above the server's ping period.
        self.assertGreaterEqual(seconds(one["WatchdogSec"]), 10)
        # The shipped storage path is relative: it lands in the state directory.
        with open(os.path.join(CONF, "server.toml"), "rb") as f:
            self.assertFalse(os.path.isabs(tomllib.load(f)["storage"]["path"]))

    def test_the_socket_unit_listens_on_the_configured_port(self):
        with open(os.path.join(CONF, "server.toml"), "rb") as f:
            port = tomllib.load(f)["server"]["port"]
        sock = parse_unit(SOCKET)
        self.assertEqual(sock["Socket"]["ListenStream"], [str(port)])
        self.assertEqual(sock["Install"]["WantedBy"], ["sockets.target"])

    def test_what_the_server_does_fits_the_sandbox(self):
        if "ASAN_OPTIONS" in os.environ:
            self.skipTest("sanitizer build: LeakSanitizer does not work under ptrace")
        if shutil.which("strace") is None:
            self.skipTest("strace is not installed")
        if shutil.which("systemd-analyze") is None:
            self.skipTest("systemd-analyze is not installed")
        probe = subprocess.run(["strace", "-f", "-o", os.devnull, "true"], capture_output=True,
                               text=True)
        if probe.returncode != 0:
            self.skipTest(f"strace cannot trace here: {probe.stderr.strip()}")
        trace = self.path("trace")
        config = self.write_config(agencies=2, level="DEBUG")
        notify = self.notify_socket()
        # Over TLS, as the unit runs it: handshakes, the CRL and a reload of
        # the certificates are part of what is traced.
        tls = dh.harness.server_tls_flags(self.ensure_certs(2), crl=True)
        proc = self.launch(["strace", "-f", "-qq", "-o", trace, "-e", "signal=none",
                            dh.SERVER, "--config", config, *tls],
                           env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
        per_agency = {1: make_bets(1, 200, winners=1), 2: make_bets(2, 100, winners=2)}
        agencies = [self.start_agency(a, self.agency_file(a, b), batch=30)
                    for a, b in per_agency.items()]
        for a in agencies:
            self.assertEqual(a.wait(60), 0, a.log())
        # Signals go to the server itself: strace does not forward them.
        server_pid = dh.harness.children_of(proc.pid)[0]
        os.kill(server_pid, signal.SIGHUP)
        self.wait_log(proc, lambda es: any("applied" in e.fields for e in es), what="reload")
        os.kill(server_pid, signal.SIGTERM)
        self.assertEqual(proc.wait(30), 0, proc.log())
        time.sleep(0.1)

        with open(trace) as f:
            lines = f.read().splitlines()
        calls = collections.Counter()
        for line in lines:
            m = re.match(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
            if m and m.group(1) not in ("exited", "killed", "resumed"):
                calls[m.group(1)] += 1
        self.assertIn("accept4", calls)
        self.assertIn("memfd_create", calls)
        self.assertIn("flock", calls)
        allowed = expand_syscall_group("@system-service")
        self.assertGreater(len(allowed), 200)
        self.assertEqual(sorted(set(calls) - allowed), [],
                         "system calls outside SystemCallFilter=@system-service")
        denied = expand_syscall_group("@privileged") | expand_syscall_group("@resources")
        self.assertEqual(sorted(set(calls) & denied), [],
                         "system calls in SystemCallFilter=~@privileged @resources")
        self.assertIn("tls_handshake | result: success", proc.log())
        # ProcSubset=pid: only the processes' own /proc files.
        proc_files = set(re.findall(r'"(/proc/[^"]+)"', "\n".join(lines)))
        self.assertEqual([p for p in proc_files if not re.match(r"^/proc/(self|\d+)/", p)], [],
                         "ProcSubset=pid")

        families = set(re.findall(r"socket\((AF_[A-Z0-9]+)", "\n".join(lines)))
        self.assertTrue(families)
        self.assertLessEqual(families, {"AF_INET", "AF_INET6", "AF_UNIX"},
                             "RestrictAddressFamilies")
        wx = [line for line in lines if re.search(r"\b(mmap|mprotect)\(.*PROT_WRITE\|PROT_EXEC",
                                                  line)]
        self.assertEqual(wx, [], "MemoryDenyWriteExecute")
        # ProtectSystem=strict: files are written only beside the bets file.
        written = set()
        for line in lines:
            m = re.search(r'open(?:at)?\((?:AT_FDCWD, )?"([^"]+)", ([A-Z_|]+)', line)
            if m and re.search(r"O_WRONLY|O_RDWR|O_CREAT", m.group(2)) and " = -1 " not in line:
                written.add(m.group(1))
        self.assertTrue(written)
        self.assertEqual({os.path.dirname(p) for p in written}, {self.dir}, written)
        # The certificate files are only read.
        self.assertFalse([p for p in written if "/certs/" in p], written)
        # PrivateDevices=yes: only the pseudo devices it keeps.
        devices = set(re.findall(r'"(/dev/[^"]+)"', "\n".join(lines)))
        self.assertLessEqual(devices, {"/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                                       "/dev/urandom", "/dev/tty", "/dev/shm"}, devices)


if __name__ == "__main__":
    unittest.main(verbosity=2)
