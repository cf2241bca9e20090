"""Machinery for the daemon suite: the server as a service manager sees it.

A NotifySocket plays systemd's side of sd_notify(3): an AF_UNIX datagram
socket the server is pointed at with NOTIFY_SOCKET. Servers are started with
a configuration file only (no --port flag), so that a reload can change it.
"""
import os
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402,F401
from harness import LotteryTest, Proc, free_port  # noqa: E402,F401

SERVER = harness.SERVER
# The same server built with the built-in notifier instead of libsystemd's
# (equal to SERVER when the build has no libsystemd).
BUILD_ROOT = os.environ.get("LOTTERY_BUILD_ROOT", os.path.join(harness.ROOT, "build"))
SERVER_BUILTIN_NOTIFY = os.environ.get("LOTTERY_SERVER_BUILTIN_NOTIFY") or next(
    (p for p in [os.path.join(BUILD_ROOT, "src", "lottery-server-builtin-notify")]
     if os.path.exists(p)), SERVER)


def notify_servers():
    """(name, binary) for each notifier backend this build has."""
    if SERVER_BUILTIN_NOTIFY != SERVER:
        return [("libsystemd", SERVER), ("builtin", SERVER_BUILTIN_NOTIFY)]
    return [("builtin", SERVER)]


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock.bind(self.path)
        self.messages = []  # (monotonic time, {key: value}, raw text)

    def poll(self, timeout):
        """Collects datagrams for up to `timeout` seconds; returns the new ones."""
        new = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.sock], [], [], max(0.0, left))
            if not ready:
                break
            data = self.sock.recv(65536).decode()
            fields = dict(line.split("=", 1) for line in data.split("\n") if "=" in line)
            entry = (time.monotonic(), fields, data)
            self.messages.append(entry)
            new.append(entry)
            if left <= 0:
                break
        return new

    def wait_for(self, predicate, timeout=20, what="notification"):
        """Returns the first message (new or already received) whose fields match."""
        for entry in self.messages:
            if predicate(entry[1]):
                return entry
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.poll(min(0.2, max(0.0, deadline - time.monotonic()))):
                if predicate(entry[1]):
                    return entry
        raise AssertionError(f"no {what} within {timeout}s; got {[m[2] for m in self.messages]}")

    def close(self):
        self.sock.close()


class DaemonTest(LotteryTest):
    """LotteryTest plus a config-file server and a notify socket."""

    def setUp(self):
        super().setUp()
        self.notify = None

    def tearDown(self):
        if self.notify is not None:
            self.notify.close()
        super().tearDown()

    def notify_socket(self):
        self.notify = NotifySocket(self.dir)
        return self.notify

    def write_config(self, agencies=3, level="INFO", port=None, extra=""):
        """Writes server.toml in the test directory; returns its path."""
        self.port = port if port is not None else getattr(self, "port", None) or free_port()
        path = self.path("server.toml")
        with open(path + ".tmp", "w") as f:
            f.write(f'[server]\naddress = "127.0.0.1"\nport = {self.port}\nagencies = {agencies}\n'
                    f'{extra}\n[storage]\npath = "{self.path("bets.csv")}"\n'
                    f'[log]\nlevel = "{level}"\n')
        os.replace(path + ".tmp", path)
        return path

    def launch(self, argv, env=None, name="server", pass_fds=(), wait_listen=True):
        """Starts argv as the server (no flags added)."""
        full_env = dict(os.environ)
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS",
                    "JOURNAL_STREAM"):
            full_env.pop(key, None)
        full_env.update(env or {})
        p = Proc.__new__(Proc)
        p.name = name
        p.out_path = self.path(f"{name}.out")
        p.err_path = self.path(f"{name}.log")
        with open(p.out_path, "w") as out, open(p.err_path, "w") as err:
            p.popen = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                       env=full_env, start_new_session=True, pass_fds=pass_fds)
        p.pid = p.popen.pid
        self.procs.append(p)
        self.server = p
        if wait_listen:
            # Bound, then recovered: "ready" follows both.
            self.wait_log(p, lambda es: any(e.action == "ready" and e.result == "success"
                                            for e in es) or not p.alive(), what="ready")
            self.assertTrue(p.alive(), f"server exited {p.popen.returncode}:\n{p.log()}")
        return p

    def start_with_config(self, config, server=SERVER, env=None, name="server", wait_listen=True):
        return self.launch([server, "--config", config], env=env, name=name,
                           wait_listen=wait_listen)

    def port_accepts(self, port=None):
        try:
            with socket.create_connection(("127.0.0.1", port or self.port), timeout=2):
                return True
        except OSError:
            return False
