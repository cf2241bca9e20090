"""Exit codes a service manager can act on (sysexits): 0 graceful, 64 usage,
78 configuration, 71 no port or no shared memory, each failure with one clear
ERROR line and no file left behind; and --check-config for ExecStartPre=."""
import os
import resource
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402
from harness import parse_log  # noqa: E402


def run(argv, timeout=20, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)


class ExitCodesTest(dh.DaemonTest):

    def one_error(self, stderr, action):
        errors = [e for e in parse_log(stderr) if e.level == "ERROR"]
        self.assertEqual(len(errors), 1, stderr)
        self.assertEqual(errors[0].action, action, stderr)
        return errors[0]

    def test_check_config_accepts_a_good_file_without_starting(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        config = self.write_config(port=blocker.getsockname()[1], extra="max_connections = 7")
        r = run([dh.SERVER, "--check-config", "--config", config])
        self.assertEqual(r.returncode, 0, r.stderr)
        # It prints the effective configuration, one key per line.
        values = dict(line.split(" = ", 1) for line in r.stdout.splitlines())
        self.assertEqual(values["server.port"], str(self.port))
        self.assertEqual(values["server.max_connections"], "7")
        self.assertEqual(values["storage.path"], self.path("bets.csv"))
        self.assertIn(f"action: check_config | result: success | config: {config}", r.stderr)
        # Nothing was started: no bets file, no listen line.
        self.assertFalse(os.path.exists(self.path("bets.csv")))
        self.assertNotIn("action: listen", r.stderr)
        # 0 derives the limit from server.agencies: the value the server uses is printed.
        derived = self.write_config(port=blocker.getsockname()[1], extra="max_connections = 0")
        r = run([dh.SERVER, "--check-config", "--config", derived, "--agencies", "5"])
        values = dict(line.split(" = ", 1) for line in r.stdout.splitlines())
        self.assertEqual(values["server.max_connections"], "282 (0: derived)", r.stdout)
        shipped = os.path.join(dh.harness.ROOT, "conf", "server.toml")
        self.assertEqual(run([dh.SERVER, "--check-config", "--config", shipped]).returncode, 0)

    def test_check_config_rejects_bad_files_with_78(self):
        cases = {
            "syntax": ("[server\nport = 1\n", "server.toml:"),
            "unknown key": ("[server]\nprot = 1\n", "unknown key 'server.prot'"),
            "out of range": ("[server]\nport = 70000\n", "'server.port'"),
            "wrong type": ('[server]\nagencies = "five"\n', "'server.agencies'"),
            "bad level": ('[log]\nlevel = "LOUD"\n', "'log.level'"),
            # Checked as a start would bind it: --check-config and a start agree.
            "unresolvable address": ('[server]\naddress = "not.an.ip"\n', "'server.address'"),
            "limit below agencies": ("[server]\nagencies = 5\nmax_connections = 3\n",
                                     "server.toml"),
        }
        for name, (text, expected) in cases.items():
            with self.subTest(name):
                path = self.path("server.toml")
                with open(path, "w") as f:
                    f.write(text)
                r = run([dh.SERVER, "--check-config", "--config", path])
                self.assertEqual(r.returncode, 78, r.stderr)
                error = self.one_error(r.stderr, "config")
                self.assertIn(expected, error.raw)
                self.assertEqual(r.stdout, "")
        r = run([dh.SERVER, "--check-config", "--config", self.path("missing.toml")])
        self.assertEqual(r.returncode, 78)
        self.assertIn("missing.toml", self.one_error(r.stderr, "config").raw)

    def test_usage_errors_exit_64(self):
        for argv in (["--bogus"], ["--port"], ["--port", "http"], ["stray"],
                     ["--check-config", "--nope"]):
            with self.subTest(argv=argv):
                r = run([dh.SERVER, *argv])
                self.assertEqual(r.returncode, 64, r.stderr)
                self.one_error(r.stderr, "config")

    def test_config_errors_exit_78_at_start(self):
        r = run([dh.SERVER, "--port", str(dh.free_port())], env={**os.environ,
                                                                   "SERVER_AGENCIES": "zero"})
        self.assertEqual(r.returncode, 78, r.stderr)
        self.assertIn("SERVER_AGENCIES", self.one_error(r.stderr, "config").raw)

    def test_a_port_in_use_exits_71_with_one_line(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        self.addCleanup(blocker.close)
        port = blocker.getsockname()[1]
        r = run([dh.SERVER, "--address", "127.0.0.1", "--port", str(port), "--storage",
                 self.path("bets.csv")])
        self.assertEqual(r.returncode, 71, r.stderr)
        error = self.one_error(r.stderr, "listen")
        self.assertIn(f"bind 127.0.0.1:{port}", error.raw)
        self.assertIn("Address already in use", error.raw)
        # Bound after the data lock and before recovery: nothing created.
        self.assertEqual(os.listdir(self.dir), [])

    def test_no_shared_memory_exits_71_with_one_line(self):
        # Descriptors 0-2, the signal descriptor, the data lock and the
        # listening socket fit; the shared winners file (a memfd) does not.
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (6, 6))
        r = run([dh.SERVER, "--port", str(dh.free_port()), "--storage", self.path("bets.csv")],
                preexec_fn=limit)
        self.assertEqual(r.returncode, 71, r.stderr)
        error = self.one_error(r.stderr, "shared_memory")
        self.assertIn("Too many open files", error.raw)
        # A failed start leaves nothing behind, not even its lock file.
        self.assertEqual(os.listdir(self.dir), [])

    def test_a_storage_path_that_is_a_directory_exits_73_leaving_no_lock_file(self):
        os.mkdir(self.path("bets.csv"))
        r = run([dh.SERVER, "--address", "127.0.0.1", "--port", str(dh.free_port()),
                 "--storage", self.path("bets.csv")])
        self.assertEqual(r.returncode, 73, r.stderr)
        # The lock file it published its pid in goes with the failed start.
        self.assertFalse(os.path.exists(self.path("bets.csv.lock")), r.stderr)

    def test_a_graceful_stop_exits_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                config = self.write_config()
                proc = self.start_with_config(config, name=f"server-{sig}")
                proc.signal(sig)
                self.assertEqual(proc.wait(15), 0, proc.log())
                self.assertIn("action: exit | result: success | exit_code: 0", proc.log())

    def test_help_covers_every_flag_and_exits_0(self):
        r = run([dh.SERVER, "--help"])
        self.assertEqual(r.returncode, 0)
        for word in ("--config", "--check-config", "--port", "--max-connections", "--log-level",
                     "server.read_timeout", "storage.path", "71", "78", "64"):
            self.assertIn(word, r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
