"""Logs under journald: when JOURNAL_STREAM names the descriptor stderr is
open on, every line starts with its syslog priority and has no timestamp;
otherwise lines keep their timestamps. The action text is the same."""
import os
import re
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import daemon_harness as dh  # noqa: E402
from harness import make_bets  # noqa: E402

JOURNAL_LINE = re.compile(r"^<(\d)>(DEBUG|INFO|WARNING|ERROR) action: \S+ \| result: "
                          r"(success|fail|in_progress)( \| .*)?$")
PRIORITY = {"DEBUG": "7", "INFO": "6", "WARNING": "4", "ERROR": "3"}


class JournalTest(dh.DaemonTest):

    def stream_id(self, path):
        st = os.stat(path)
        return f"{st.st_dev}:{st.st_ino}"

    def test_server_lines_carry_the_priority_when_stderr_is_the_journal_stream(self):
        log_path = self.path("server.log")
        open(log_path, "w").close()
        config = self.write_config(agencies=1, level="DEBUG")
        # launch() reopens server.log with "w": same inode, so the id holds.
        proc = self.start_with_config(config, env={"JOURNAL_STREAM": self.stream_id(log_path)})
        agency = self.start_agency(1, self.agency_file(1, make_bets(1, 30, winners=1)), batch=7)
        self.assertEqual(agency.wait(30), 0, agency.log())
        # A warning, from a worker: an unknown message type.
        c = self.raw()
        c.send(b"\xde\x00\x00\x00\x00")
        c.read()
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0)
        lines = proc.log().splitlines()
        self.assertGreater(len(lines), 10)
        seen = set()
        for line in lines:
            m = JOURNAL_LINE.match(line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), PRIORITY[m.group(2)], line)
            seen.add(m.group(2))
        self.assertEqual(seen, {"DEBUG", "INFO", "WARNING"})
        self.assertTrue(any(line.startswith("<6>INFO action: sorteo | result: success")
                            for line in lines))
        # The agency's stderr is another file: its lines keep their timestamps.
        self.assertTrue(all(re.match(r"^\d{4}-\d{2}-\d{2} ", line)
                            for line in agency.log().splitlines()))

    def test_a_stream_id_of_another_file_keeps_timestamps(self):
        other = self.path("other")
        open(other, "w").close()
        config = self.write_config()
        proc = self.start_with_config(config, env={"JOURNAL_STREAM": self.stream_id(other)})
        proc.signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0)
        for line in proc.log().splitlines():
            self.assertRegex(line, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} (INFO|DEBUG|WARNING|ERROR) ")

    def test_errors_before_start_carry_priority_3(self):
        err_path = self.path("err.log")
        with open(err_path, "w") as err:
            env = {**os.environ, "JOURNAL_STREAM": self.stream_id(err_path)}
            code = subprocess.run([dh.SERVER, "--port", "http"], stderr=err, env=env,
                                  timeout=20).returncode
        self.assertEqual(code, 64)
        with open(err_path) as f:
            text = f.read()
        self.assertTrue(text.startswith("<3>ERROR action: config | result: fail | error: usage:"),
                        text)

    def test_agency_lines_carry_the_priority_too(self):
        err_path = self.path("agency.err")
        with open(err_path, "w") as err:
            env = {**os.environ, "JOURNAL_STREAM": self.stream_id(err_path)}
            code = subprocess.run([dh.harness.AGENCY, "--server", f"127.0.0.1:{dh.free_port()}",
                                   "--connect-timeout", "200ms"], stderr=err, env=env,
                                  timeout=20).returncode
        self.assertNotEqual(code, 0)
        with open(err_path) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, JOURNAL_LINE)


if __name__ == "__main__":
    unittest.main(verbosity=2)
