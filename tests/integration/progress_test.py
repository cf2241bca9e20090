"""The agency's live progress line (log.progress; agency/progress_line.h):
drawn when stderr is a terminal, here a pseudo-terminal the test holds, or
with --progress; absent otherwise, leaving the log as it was."""
import os
import pty
import re
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402

CLEAR = "\r\x1b[K"
LINE = re.compile(r"agency 1 \| sent ([\d,]+) \| acked ([\d,]+) \| (\d+)% of [\d.]+ (?:B|KiB|MiB|GiB) \| "
                  r"([\d,]+|-) bets/s \|( ETA \S+ \|)? reconnects (\d+)")


def number(text):
    return int(text.replace(",", ""))


class ProgressTest(harness.LotteryTest):

    def agency_argv(self, dataset, extra=()):
        return [harness.AGENCY, "--id", "1", "--server", f"127.0.0.1:{self.port}", "--batch", "50",
                "--tls-mode", "off", "--dataset", dataset, *extra]

    def run_on_pty(self, argv):
        """Runs argv with stderr on a pseudo-terminal; returns (exit code,
        what the terminal received, stdout)."""
        master, slave = pty.openpty()
        received = []

        def drain():
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the slave closed it
                    return
                if not chunk:
                    return
                received.append(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=slave, cwd=self.dir, timeout=120)
        finally:
            os.close(slave)
            reader.join(10)
            os.close(master)
        return p.returncode, b"".join(received).decode("utf-8", "replace"), p.stdout.decode()

    def test_on_a_terminal_the_line_follows_the_round_under_the_log(self):
        self.start_server(agencies=1)
        bets = harness.make_bets(1, 20000, winners=3)
        code, screen, stdout = self.run_on_pty(self.agency_argv(self.agency_file(1, bets)))
        self.assertEqual(code, 0, screen[-3000:])
        self.assertEqual(stdout.split(), [b[2] for b in bets if b[4] == 7574])
        draws = [m for m in LINE.finditer(screen)]
        self.assertGreaterEqual(len(draws), 2, screen[-3000:])
        # It is redrawn in place: each drawing starts by clearing the line.
        self.assertIn(CLEAR + "agency 1 | sent", screen)
        acked = [number(m.group(2)) for m in draws]
        self.assertEqual(acked, sorted(acked), "acked never goes back")
        last = draws[-1]
        self.assertEqual(number(last.group(1)), 20000)
        self.assertEqual(number(last.group(2)), 20000)
        self.assertEqual(last.group(3), "100")
        self.assertEqual(last.group(6), "0")
        for m in draws:
            self.assertLessEqual(number(m.group(2)), number(m.group(1)), "acked <= sent")
        # The log lines are all there, whole, each on a line of its own.
        lines = [line.split(CLEAR)[-1] for line in screen.replace("\r\n", "\n").split("\n")]
        log = [line for line in lines if " action: " in line]
        self.assertGreater(len(log), 5)
        for line in log:
            self.assertRegex(line, harness.LOG_LINE)
        self.assertTrue(any("action: consulta_ganadores | result: success" in line for line in log))
        self.assertTrue(any("action: apuestas_enviadas | result: success" in line for line in log))

    def test_without_a_terminal_the_log_is_unchanged(self):
        self.start_server(agencies=1)
        p = self.start_agency(1, self.agency_file(1, harness.make_bets(1, 5000)), batch=50)
        self.assertEqual(p.wait(60), 0, p.log())
        self.assertNotIn("\x1b", p.log())
        self.assertNotIn("| sent ", p.log())
        for line in p.log().splitlines():
            self.assertRegex(line, harness.LOG_LINE)

    def test_progress_never_keeps_a_terminal_quiet_and_a_bare_flag_forces_it(self):
        self.start_server(agencies=1)
        dataset = self.agency_file(1, harness.make_bets(1, 3000))
        code, screen, _ = self.run_on_pty(self.agency_argv(dataset, ["--progress", "never"]))
        self.assertEqual(code, 0, screen[-3000:])
        self.assertNotIn("| sent ", screen)
        self.assertIn("action: consulta_ganadores | result: success", screen)
        # A second round needs a second server: the first one's draw is done.
        self.server.signal(15)
        self.server.wait(30)
        for suffix in ("", ".journal", ".result"):
            os.remove(self.path("bets.csv" + suffix))
        self.start_server(agencies=1)
        p = subprocess.run(self.agency_argv(dataset, ["--progress"]), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, cwd=self.dir, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        self.assertRegex(p.stderr, r"agency 1 \| sent 3,000 \| acked 3,000 \| 100% of ")


if __name__ == "__main__":
    unittest.main(verbosity=2)
