"""The failover of issue 30's "done when", shared by the integration suite
(a small round) and the slow suite (5 x 100,000 bets).

A PostgreSQL primary with a synchronous streaming standby
(tests/lib/pg_cluster.py); an active lottery-server and a `--standby` one,
both on the multi-host DSN `host=127.0.0.1,127.0.0.1 port=PRIMARY,STANDBY
... target_session_attrs=read-write`; agencies given both servers'
addresses. Once `takeover_at` rows are committed, the active server's whole
process group is SIGKILLed, the primary stopped at once (immediate) and the
standby promoted. The standby server must take over on the promoted
database, every agency must exit 0 with its winners, and the promoted
database must hold every bet of the round exactly once.

One cluster per test (a promotion cannot be undone); loopback only; every
process, the cluster's too, is killed when the test ends.
"""
import collections
import os
import signal
import time

import harness
import pg_cluster
from harness import make_bets

WINNING_NUMBER = 7574


def group_members(pgid):
    """Live processes of process group `pgid` (zombies left out)."""
    return [p for p, _, group in harness.live_processes() if group == pgid]


class PgFailoverTest(harness.LotteryTest):
    """Base class: run_failover() is the whole scenario."""

    def setUp(self):
        super().setUp()
        self.cluster = pg_cluster.PgCluster()
        # Cleanups run after tearDown: the servers are dead before the cluster goes.
        self.addCleanup(self.cluster.close)
        self.replica = self.cluster.add_standby()
        # Both lottery-servers reach whichever database is the primary.
        self.dsn = (f"host=127.0.0.1,127.0.0.1 port={self.cluster.port},{self.replica.port} "
                    f"dbname={pg_cluster.DATABASE} user={pg_cluster.SUPERUSER} "
                    "target_session_attrs=read-write")

    # -- helpers

    def pg_flags(self, *more):
        return ["--storage-backend", "postgresql", "--storage-dsn", self.dsn, *more]

    def count_rows(self, db):
        return int(db.sql("SELECT count(*) FROM bets") or 0)

    def stored_rows(self, db):
        """Every stored bet of round 1, as (agency, first, last, document, birthdate, number)."""
        rows = collections.Counter()
        # Hex, so that names holding any byte psql prints come back whole.
        out = db.sql("SELECT encode(convert_to(concat_ws(chr(31), agency, first_name, "
                     "last_name, document, birthdate, number), 'UTF8'), 'hex') "
                     "FROM bets WHERE round = 1")
        for line in out.splitlines():
            rows[tuple(bytes.fromhex(line).decode().split("\x1f"))] += 1
        return rows

    def start_standby_server(self, agencies):
        port = harness.free_port()
        standby = harness.Proc(
            [harness.SERVER, "--address", "127.0.0.1", "--port", str(port), "--agencies",
             str(agencies), "--storage", self.path("standby-bets.csv"), "--control-socket",
             self.path("standby.control"), *self.pg_flags("--standby")],
            self.dir, "standby-server")
        self.procs.append(standby)
        self.wait_log(standby, lambda es: any(e.action == "standby" for e in es),
                      what="the standby server waiting for the lease")
        return standby, port

    def wait_rows(self, at_least, timeout):
        deadline = time.monotonic() + timeout
        while True:
            n = self.count_rows(self.cluster)
            if n >= at_least:
                return n
            self.assertLess(time.monotonic(), deadline,
                            f"only {n} of {at_least} bets committed after {timeout} s")
            time.sleep(0.02)

    # -- the scenario

    def run_failover(self, agencies, bets, takeover_at, batch, round_timeout, label,
                     promote_after=3.0, window=None):
        per_agency = {a: make_bets(a, bets, winners=a + 2) for a in range(1, agencies + 1)}
        files = {}
        for a, rows in per_agency.items():
            files[a] = self.path(f"agency-{a}.csv")
            harness.write_agency_file(files[a], rows)

        active = self.start_server(agencies=agencies, extra=self.pg_flags(), name="active-server")
        active_port = self.port
        self.assertIn(f"127.0.0.1:{self.cluster.port}/", active.log())
        standby, standby_port = self.start_standby_server(agencies)

        started = time.monotonic()
        addresses = f"127.0.0.1:{active_port},127.0.0.1:{standby_port}"
        # A small window slows the agencies down, so that a small round is
        # still running when the servers' machine dies.
        window_flags = ["--window", str(window)] if window else []
        procs = {a: self.start_agency(a, files[a], batch=batch,
                                      extra=["--server", addresses, *window_flags])
                 for a in per_agency}
        seen = self.wait_rows(takeover_at, timeout=round_timeout)
        reached = time.monotonic()

        # The machine of the active server and of the primary dies.
        os.killpg(active.pid, signal.SIGKILL)
        active.popen.wait(10)
        self.cluster.stop("immediate")
        killed = time.monotonic()
        # The operator (or Patroni) takes a moment: meanwhile the standby
        # server's tries find no primary and a read-only standby.
        time.sleep(promote_after)
        self.replica.promote()
        promoted = time.monotonic()
        at_takeover = self.count_rows(self.replica)
        self.assertGreaterEqual(at_takeover, seen, "the promoted database lost committed bets")
        self.assertLess(at_takeover, agencies * bets, "the round was over before the failover")

        # The standby server reconnects through the multi-host DSN to the
        # promoted database, takes the lease there and serves.
        self.wait_log(standby, lambda es: any(e.action == "ready" for e in es), timeout=60,
                      what="the standby server serving")
        serving = time.monotonic()
        self.server = standby
        log = standby.log()
        taken = [e for e in standby.entries()
                 if e.action == "storage" and e.result == "success"]
        self.assertTrue(taken, log[-3000:])
        self.assertIn("lease taken", taken[-1].raw)
        self.assertEqual(taken[-1].fields.get("database"),
                         f"127.0.0.1:{self.replica.port}/{pg_cluster.DATABASE}", log[-3000:])
        self.assertIn("round_number: 1", log)
        # It had waited on the primary; its tries in between failed and were retried.
        waiting = [e for e in standby.entries() if e.action == "standby"]
        self.assertEqual(waiting[0].fields.get("database"),
                         f"127.0.0.1:{self.cluster.port}/{pg_cluster.DATABASE}", log[-3000:])
        retries = [e for e in standby.entries() if e.action == "storage" and e.result == "fail"]
        self.assertTrue(all("standby, retrying" in e.raw for e in retries), log[-3000:])
        self.assertGreaterEqual(len(retries), 2, log[-3000:])
        # Nothing of the old server is left: no committer outlived the kill.
        self.assertEqual(group_members(active.pid), [])

        for a, p in procs.items():
            self.assertEqual(p.wait(round_timeout), 0, f"agency {a}:\n{p.log()[-3000:]}")
            want = sorted(b[2] for b in per_agency[a] if b[4] == WINNING_NUMBER)
            self.assertEqual(sorted(p.stdout().split()), want, f"agency {a}")
        finished = time.monotonic()

        # Every bet of the round, exactly once, in the promoted database.
        self.assertEqual(self.stored_rows(self.replica), self.expected_rows(per_agency))
        self.assertEqual(self.replica.sql("SELECT state FROM rounds WHERE round = 1"), "drawn")
        self.assertEqual(self.replica.sql(
            "SELECT count(*) FROM agency_progress WHERE round = 1 AND finished"), str(agencies))
        self.assertEqual(self.replica.sql("SELECT epoch FROM lottery_lease"), "2")

        # The server that took over stops cleanly and leaves nothing behind.
        standby.signal(signal.SIGTERM)
        self.assertEqual(standby.wait(30), 0, standby.log()[-3000:])
        self.assertEqual(group_members(standby.pid), [])

        total = agencies * bets
        print(f"\n{label}: {agencies} agencies x {bets} bets; {seen} rows committed "
              f"{reached - started:.1f} s into the round; kill + immediate stop "
              f"{killed - reached:.2f} s; promoted {promoted - killed:.2f} s later "
              f"({promote_after:.0f} s pause, then pg_promote) "
              f"({at_takeover} rows on the promoted database); standby server serving "
              f"{serving - promoted:.2f} s after the promotion ({len(retries)} failed tries "
              f"before), {serving - reached:.2f} s after the kill; round done {finished - started:.1f} s ({total} bets, "
              f"{total / (finished - started):,.0f} bets/s overall)", flush=True)
