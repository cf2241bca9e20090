"""server.metrics_address: the Prometheus page a running round publishes
(docs/METRICS.md). promtool (Debian package `prometheus`, installed by make
deps) checks the page; a real Prometheus server started by the test on
loopback scrapes the server, and the test reads a value back through its
HTTP API."""
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import urllib.request
import json

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
from harness import ACK, ERROR, WELCOME, bets_frame, decode_error, hello  # noqa: E402
from protocol import E_BAD_AGENCY, E_INVALID_BET  # noqa: E402

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def parse_page(text):
    """{(name, labels): value} of a text exposition page."""
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        values[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return values


def trickle(sock, stop, period=0.5, most=40):
    """One byte of a request that never ends, every `period` seconds, until
    `stop`, the server closes the connection, or `most` bytes."""
    for _ in range(most):
        if stop.wait(period):
            return
        try:
            sock.send(b"G")
        except OSError:
            return


class MetricsTest(harness.LotteryTest):

    def start_with_metrics(self, agencies, extra=()):
        server = self.start_server(agencies=agencies,
                                   extra=["--metrics-address", "127.0.0.1:0", *extra])
        line = [e for e in server.entries() if e.action == "metrics"]
        self.assertTrue(line, server.log())
        self.metrics_port = int(line[0].fields["listening"].rsplit(":", 1)[1])
        return server

    def scrape(self, path="/metrics"):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return r.read().decode()

    def run_agencies(self, sent, batch=10):
        procs = {a: self.start_agency(a, self.agency_file(a, bets), batch=batch)
                 for a, bets in sent.items()}
        for a, p in procs.items():
            self.assertEqual(p.wait(60), 0, p.log())
        return procs

    def test_the_page_follows_the_round_and_promtool_accepts_it(self):
        self.start_with_metrics(agencies=2)
        before = parse_page(self.scrape())
        self.assertEqual(before[("lottery_round", "")], 1)
        self.assertEqual(before[("lottery_agencies", "")], 2)
        self.assertEqual(before[("lottery_draw_state", "")], 0)
        self.assertEqual(before[("lottery_round_state", "")], 1)
        self.assertEqual(before[("lottery_agencies_connected", "")], 0)
        # A stranger claiming agency 9, and a batch with an invalid bet.
        stranger = self.raw()
        stranger.send(hello(9))
        kind, payload = stranger.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_BAD_AGENCY))
        bad = self.raw()
        bad.send(hello(1))
        self.assertEqual(bad.read()[0], WELCOME)
        during = parse_page(self.scrape())
        self.assertEqual(during[("lottery_agency_connected", '{agency="1"}')], 1)
        self.assertEqual(during[("lottery_agencies_connected", "")], 1)
        bad.send(bets_frame(1, [("Ana", "Paz", "12x", "1990-01-01", 7574),
                                ("Ana", "Paz", "123", "1990-01-01", 7574)]))
        kind, payload = bad.read()
        self.assertEqual((kind, decode_error(payload)[0]), (ERROR, E_INVALID_BET))
        bad.close()
        self.reintroduce(1)[0].close()  # the slot is free again
        sent = {1: harness.make_bets(1, 95, winners=2), 2: harness.make_bets(2, 41, winners=1)}
        self.run_agencies(sent, batch=10)
        page = self.scrape()
        after = parse_page(page)
        self.assertEqual(after[("lottery_bets_stored_total", '{agency="1"}')], 95)
        self.assertEqual(after[("lottery_batches_stored_total", '{agency="1"}')], 10)
        self.assertEqual(after[("lottery_bets_stored_total", '{agency="2"}')], 41)
        self.assertEqual(after[("lottery_agency_round_bets", '{agency="2"}')], 41)
        self.assertEqual(after[("lottery_bets_rejected_total", '{agency="1"}')], 2)
        self.assertEqual(after[("lottery_batches_rejected_total", '{agency="1"}')], 1)
        self.assertEqual(after[("lottery_connections_refused_total", '{reason="bad_agency"}')], 1)
        self.assertEqual(after[("lottery_agencies_finished", "")], 2)
        self.assertEqual(after[("lottery_draw_state", "")], 2)
        self.assertEqual(after[("lottery_round_state", "")], 3)
        self.assertGreater(after[("lottery_draw_duration_seconds", "")], 0)
        self.assertEqual(after[("lottery_batch_ack_duration_seconds_count", "")], 10 + 5)
        self.assertEqual(after[("lottery_stored_bytes_total", "")],
                         os.path.getsize(self.path("bets.csv")))
        # The harness's server syncs every batch: the group commit's calls.
        self.assertGreater(after[("lottery_fdatasync_duration_seconds_count", "")], 0)
        self.assertGreaterEqual(after[("lottery_connections_accepted_total", "")], 5)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool is missing: make deps installs Debian's prometheus")
        check = subprocess.run([promtool, "check", "metrics"], input=page, capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # Only /metrics is the page.
        with self.assertRaises(urllib.error.HTTPError) as missing:
            self.scrape("/nothing")
        self.assertEqual(missing.exception.code, 404)

    def test_a_restarted_server_reports_the_resumed_round(self):
        self.start_with_metrics(agencies=2)
        c = self.raw()
        c.send(hello(2))
        self.assertEqual(c.read()[0], WELCOME)
        c.send(bets_frame(1, harness.make_bets(2, 7)))
        self.assertEqual(c.read()[0], ACK)
        c.close()
        self.server.signal(15)
        self.assertEqual(self.server.wait(30), 0)
        self.start_with_metrics(agencies=2)
        page = parse_page(self.scrape())
        self.assertEqual(page[("lottery_agency_round_bets", '{agency="2"}')], 7)
        self.assertEqual(page[("lottery_bets_stored_total", '{agency="2"}')], 0)
        self.assertEqual(page[("lottery_round", "")], 1)

    def test_scrapers_that_never_read_do_not_hold_up_the_round(self):
        self.start_with_metrics(agencies=2)
        # More silent scrapers than the endpoint serves at once.
        silent = []
        for _ in range(12):
            s = socket.create_connection(("127.0.0.1", self.metrics_port), timeout=5)
            self.addCleanup(s.close)
            silent.append(s)
        sent = {1: harness.make_bets(1, 30, winners=1), 2: harness.make_bets(2, 30)}
        started = time.monotonic()
        procs = self.run_agencies(sent)
        self.assertEqual(procs[1].stdout().split(), [b[2] for b in sent[1] if b[4] == 7574])
        self.assertLess(time.monotonic() - started, 30)
        # Their deadline passes; the page is served again.
        deadline = time.monotonic() + 20
        while True:
            try:
                page = parse_page(self.scrape())
                break
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                self.assertLess(time.monotonic(), deadline, "the page never came back")
                time.sleep(0.5)
        self.assertEqual(page[("lottery_draw_state", "")], 2)

    def test_slow_and_silent_clients_do_not_keep_a_scrape_out(self):
        self.start_with_metrics(agencies=1)
        stop = threading.Event()
        threads = []
        for k in range(16):
            s = socket.create_connection(("127.0.0.1", self.metrics_port), timeout=5)
            self.addCleanup(s.close)
            if k % 2:  # eight trickle a byte every 0.5 s, eight say nothing
                threads.append(threading.Thread(target=trickle, args=(s, stop), daemon=True))
                threads[-1].start()
        self.addCleanup(lambda: [t.join(5) for t in threads])
        self.addCleanup(stop.set)  # runs first: the tricklers stop before their sockets close
        time.sleep(0.3)
        # While all sixteen hold their connections, each scrape is answered at once.
        for _ in range(3):
            started = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=3) as r:
                page = parse_page(r.read().decode())
            self.assertLess(time.monotonic() - started, 1.5)
            self.assertEqual(page[("lottery_agencies", "")], 1)
            time.sleep(0.4)

    def test_a_real_prometheus_scrapes_the_server(self):
        prometheus = shutil.which("prometheus")
        self.assertIsNotNone(prometheus, "prometheus is missing: make deps installs it")
        self.start_with_metrics(agencies=2)
        web = harness.free_port()
        config = self.path("prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: lottery\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{self.metrics_port}']\n")
        prom = harness.Proc([prometheus, f"--config.file={config}",
                             f"--web.listen-address=127.0.0.1:{web}",
                             f"--storage.tsdb.path={self.path('tsdb')}"],
                            self.dir, "prometheus")
        self.procs.append(prom)
        sent = {1: harness.make_bets(1, 64, winners=1), 2: harness.make_bets(2, 36)}
        self.run_agencies(sent, batch=8)
        query = urllib.parse.urlencode({"query": "sum(lottery_bets_stored_total)"})
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?{query}",
                                            timeout=5) as r:
                    answer = json.load(r)
                result = answer["data"]["result"]
                if result:
                    value = float(result[0]["value"][1])
                    if value == 100:
                        break
            except (urllib.error.URLError, ConnectionError, socket.timeout, KeyError):
                pass
            self.assertTrue(prom.alive(), prom.log()[-3000:])
            time.sleep(0.5)
        self.assertEqual(value, 100, prom.log()[-3000:])
        # Prometheus saw the target as up.
        up = urllib.parse.urlencode({"query": 'up{job="lottery"}'})
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/api/v1/query?{up}", timeout=5) as r:
            self.assertEqual(json.load(r)["data"]["result"][0]["value"][1], "1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
