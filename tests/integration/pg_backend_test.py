"""Issue 30: rounds on storage.backend = "postgresql" against a real
PostgreSQL 15 that the test starts (tests/lib/pg_cluster.py): the same
winners as the file backend, exactly once across a server killed mid-round,
a standby server that takes over, fencing, and each bad configuration with
its exit code (README, docs/STORAGE.md "PostgreSQL").

One cluster per class, one database per test; loopback only; every process
is killed in tearDown."""
import collections
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from harness import make_bets  # noqa: E402


# The lease's advisory lock key (docs/STORAGE.md, "Lease and fencing").
LEASE_KEY = 0x6c6f7474657279


class PgBackendTest(pg_cluster.ClusterPerClass, harness.LotteryTest):
    DB_PREFIX = "round"

    def pg_flags(self, dsn=None, *more):
        return ["--storage-backend", "postgresql", "--storage-dsn", dsn or self.dsn, *more]

    def stored_rows(self, round_number=1):
        rows = collections.Counter()
        # Hex, so that names holding any byte psql prints come back whole.
        out = self.sql("SELECT encode(convert_to(concat_ws(chr(31), agency, first_name, "
                       "last_name, document, birthdate, number), 'UTF8'), 'hex') "
                       f"FROM bets WHERE round = {round_number}")
        for line in out.splitlines():
            rows[tuple(bytes.fromhex(line).decode().split("\x1f"))] += 1
        return rows

    def bet_count(self):
        return int(self.sql("SELECT count(*) FROM bets") or 0)

    def start_pg_server(self, agencies, *more, name="server", port=None):
        return self.start_server(agencies=agencies, extra=self.pg_flags(None, *more), name=name,
                                 port=port)

    def start_round(self, per_agency, addresses=None, batch=50, extra=()):
        procs = {}
        for a, bets in per_agency.items():
            more = list(extra)
            if addresses:
                more += ["--server", addresses]
            procs[a] = self.start_agency(a, self.agency_file(a, bets), batch=batch, extra=more)
        return procs

    def check_round(self, per_agency, procs, timeout=90):
        for a, p in procs.items():
            self.assertEqual(p.wait(timeout), 0, p.log()[-3000:])
            want = sorted(b[2] for b in per_agency[a] if b[4] == 7574)
            self.assertEqual(sorted(p.stdout().split()), want, p.log()[-2000:])
        # Every bet exactly once.
        self.assertEqual(self.stored_rows(), self.expected_rows(per_agency))

    def start_standby(self, port, agencies):
        """A --standby server on `port`, once it says it waits for the lease
        (it does not listen before it holds it)."""
        standby = harness.Proc(
            [harness.SERVER, "--address", "127.0.0.1", "--port", str(port), "--agencies",
             str(agencies), "--storage", self.path("standby-bets.csv"), "--control-socket",
             self.path("standby.control"), *self.pg_flags(None, "--standby")],
            self.dir, "standby")
        self.procs.append(standby)
        self.wait_log(standby, lambda es: any(e.action == "standby" for e in es), timeout=30,
                      what="the standby waiting for the lease")
        return standby

    def wait_rows(self, at_least, timeout=30):
        deadline = time.monotonic() + timeout
        while self.bet_count() < at_least:
            self.assertLess(time.monotonic(), deadline, f"fewer than {at_least} bets committed")
            time.sleep(0.05)

    def kill_group(self, proc):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.popen.wait(10)

    # -- the round

    def test_a_round_gives_the_file_backends_winners(self):
        per_agency = {a: make_bets(a, 400, winners=a) for a in (1, 2, 3)}
        self.start_pg_server(3)
        self.check_round(per_agency, self.start_round(per_agency))
        self.assertEqual(self.sql("SELECT state FROM rounds WHERE round = 1"), "drawn")
        self.assertEqual(self.sql("SELECT count(*) FROM agency_progress WHERE finished"), "3")
        # The same data on the file backend, in the same test: the same winners.
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(20), 0, self.server.log()[-2000:])
        file_server = self.start_server(agencies=3, name="file-server")
        procs = {a: self.start_agency(a, self.path(f"agency-{a}.csv"), batch=50,
                                      name=f"file-agency-{a}") for a in per_agency}
        for a, p in procs.items():
            self.assertEqual(p.wait(60), 0, p.log()[-2000:])
            self.assertEqual(sorted(p.stdout().split()),
                             sorted(b[2] for b in per_agency[a] if b[4] == 7574))
        self.assertTrue(file_server.alive())

    def test_sessions_stay_bounded_whatever_the_number_of_agencies(self):
        # 12 agencies, storage.postgresql_connections = 3: never more than
        # three sessions of the server (the lease's and two committers').
        per_agency = {a: make_bets(a, 1500, winners=1) for a in range(1, 13)}
        self.start_pg_server(12, "--storage-postgresql-connections", "3")
        procs = self.start_round(per_agency, batch=20)
        most = 0
        while any(p.alive() for p in procs.values()):
            most = max(most, int(self.sql(
                "SELECT count(*) FROM pg_stat_activity "
                f"WHERE datname = '{self.db}' AND application_name LIKE 'lottery-%'")))
            time.sleep(0.05)
        self.check_round(per_agency, procs)
        self.assertGreaterEqual(most, 2)
        self.assertLessEqual(most, 3)

    def test_a_store_takes_up_to_a_whole_default_window(self):
        # On PostgreSQL a worker stores up to 256 batches, an agency's
        # default window, with one COMMIT (PgBatchStore::Limits; the bets
        # file's appends stop at 64). 300 one-bet batches sent at once: each
        # batch acked once, in order, and stored by transactions (the rows'
        # xmin) of more than 64 batches and at most 256.
        bets = make_bets(1, 300)
        self.start_pg_server(1)
        c, welcome = self.reintroduce(1)
        self.assertEqual(welcome.last_seq, 0)
        c.send(b"".join(harness.bets_frame(i + 1, [b]) for i, b in enumerate(bets)))
        acked = []
        while len(acked) < len(bets):
            kind, payload = c.read()
            self.assertEqual(kind, harness.ACK, payload)
            acked.append(harness.decode_ack(payload))
        self.assertEqual(acked, [(i + 1, 1) for i in range(len(bets))])
        sizes = [int(n) for n in self.sql(
            "SELECT count(*) FROM batches WHERE round = 1 AND agency = 1 "
            "GROUP BY xmin::text").split()]
        self.assertEqual(sum(sizes), len(bets))
        self.assertGreater(max(sizes), 64, sizes)
        self.assertLessEqual(max(sizes), 256, sizes)

    def kill_mid_round(self):
        """Two agencies of 20,000 bets; the server's group SIGKILLed once 500
        are committed, the round still open. Returns the bets, the agencies
        and the server's port."""
        per_agency = {a: make_bets(a, 20000, winners=2) for a in (1, 2)}
        server = self.start_pg_server(2)
        procs = self.start_round(per_agency, batch=20)
        self.wait_rows(500)
        self.kill_group(server)
        self.assertLess(self.bet_count(), 40000, "the round ended before the kill")
        return per_agency, procs, self.port

    def test_a_server_killed_mid_round_resumes_exactly_once(self):
        per_agency, procs, port = self.kill_mid_round()
        self.start_pg_server(2, name="server-2", port=port)
        self.check_round(per_agency, procs)
        self.assertIn("round_number: 1", self.server.log())

    def downgrade_to_version_1(self):
        """The first release's schema (docs/STORAGE.md, "Version"): every
        round in one bets table with a BRIN index on round."""
        self.sql("CREATE TABLE bets_old (round bigint NOT NULL, agency int NOT NULL, "
                 "position bigint NOT NULL, first_name text NOT NULL, last_name text NOT NULL, "
                 "document text NOT NULL, birthdate date NOT NULL, number int NOT NULL); "
                 "INSERT INTO bets_old SELECT round, agency, position, first_name, last_name, "
                 "document, birthdate, number FROM bets; DROP TABLE bets; "
                 "ALTER TABLE bets_old RENAME TO bets; "
                 "CREATE INDEX bets_round ON bets USING brin (round); "
                 "UPDATE lottery_schema SET version = 1")
        self.assertEqual(self.schema(), ("1", "r"))

    def schema(self):
        """The schema's version and bets' relkind (r: a table, p: partitioned)."""
        return (self.sql("SELECT version FROM lottery_schema"),
                self.sql("SELECT relkind FROM pg_class WHERE relname = 'bets'"))

    def check_upgraded(self, server, per_agency, procs):
        self.server = server
        self.check_round(per_agency, procs)
        self.assertIn("upgraded from version 1", server.log())
        self.assertEqual(self.schema(), ("2", "p"))
        self.assertEqual(self.sql("SELECT count(*) FROM bets_round_1"), "40000")

    def test_a_version_1_database_is_upgraded_mid_round(self):
        # A server killed mid-round, its database put back in the first
        # release's form: the next server upgrades it and finishes the round
        # exactly once.
        per_agency, procs, port = self.kill_mid_round()
        self.downgrade_to_version_1()
        self.check_upgraded(self.start_pg_server(2, name="server-2", port=port), per_agency, procs)

    def test_a_standby_upgrades_only_once_it_holds_the_lease(self):
        # A rolling upgrade: while a server of the old release holds the
        # lease (played by a session holding its advisory lock), a standby
        # of this release waits and leaves the schema alone; once the lease
        # is free it takes over, upgrades, and finishes the round.
        per_agency, procs, port = self.kill_mid_round()
        self.downgrade_to_version_1()
        holder = subprocess.Popen(
            [*self.cluster.client("psql", self.db), "-X", "-q"], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
            **self.cluster.popen_args())
        self.addCleanup(holder.wait, 10)
        self.addCleanup(holder.kill)
        holder.stdin.write(f"SELECT pg_advisory_lock({LEASE_KEY});\n")
        holder.stdin.flush()
        self.wait_lease_held()
        standby = self.start_standby(port, agencies=2)
        self.assertEqual(self.schema(), ("1", "r"))
        holder.stdin.close()  # psql ends its session: the lease is free
        self.assertEqual(holder.wait(10), 0)
        self.check_upgraded(standby, per_agency, procs)

    def wait_lease_held(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                       f"AND (classid::bigint << 32) + objid::bigint = {LEASE_KEY}") != "1":
            self.assertLess(time.monotonic(), deadline, "the lease was never held")
            time.sleep(0.05)

    def test_the_standby_takes_over_when_the_active_server_dies(self):
        per_agency = {a: make_bets(a, 4000, winners=3) for a in (1, 2, 3)}
        active = self.start_pg_server(3)
        active_port = self.port
        standby_port = harness.free_port()
        standby = self.start_standby(standby_port, agencies=3)
        procs = self.start_round(per_agency, batch=20,
                                 addresses=f"127.0.0.1:{active_port},127.0.0.1:{standby_port}")
        self.wait_rows(1000)
        self.kill_group(active)
        self.wait_log(standby, lambda es: any(e.action == "ready" for e in es), timeout=30,
                      what="the standby serving")
        self.server = standby
        self.check_round(per_agency, procs)
        self.assertIn("lease taken", standby.log())

    # -- fencing

    def test_a_fenced_server_commits_nothing_more(self):
        per_agency = {a: make_bets(a, 20000) for a in (1, 2)}
        server = self.start_pg_server(2)
        procs = self.start_round(per_agency, batch=10)
        self.wait_rows(300)
        # Another server took the lease over: a new epoch. The UPDATE waits
        # for the batches in flight (they read the epoch FOR SHARE); none
        # commits after it.
        self.sql("UPDATE lottery_lease SET epoch = epoch + 1")
        at_takeover = self.bet_count()
        self.assertEqual(server.wait(30), 75, server.log()[-3000:])
        self.assertIn("fenced", server.log())
        self.assertEqual(self.bet_count(), at_takeover)
        stored = int(self.sql("SELECT coalesce(sum(bets_stored), 0) FROM agency_progress"))
        self.assertEqual(stored, at_takeover)
        for p in procs.values():
            p.kill()

    def test_a_server_whose_lease_session_is_cut_stops(self):
        per_agency = {a: make_bets(a, 20000) for a in (1,)}
        server = self.start_pg_server(1)
        self.start_round(per_agency, batch=10)
        self.wait_rows(100)
        self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'lottery-server-lease'")
        self.assertEqual(server.wait(30), 75, server.log()[-3000:])
        self.assertIn("lease session was lost", server.log())
        self.assertEqual(harness.children_of(server.pid), [])

    # -- bad configuration

    def start_other_server(self, *flags):
        p = harness.Proc([harness.SERVER, "--address", "127.0.0.1", "--port",
                          str(harness.free_port()), "--agencies", "1", "--storage",
                          self.path("bad.csv"), *flags], self.dir, "bad-server")
        self.procs.append(p)
        return p

    def run_server(self, *flags, timeout=30):
        p = self.start_other_server(*flags)
        return p.wait(timeout), p.log()

    def test_bad_configurations_say_what_is_wrong(self):
        code, log = self.run_server("--storage-backend", "postgresql")
        self.assertEqual(code, 78, log)
        self.assertIn("storage.postgresql_dsn is not set", log)
        code, log = self.run_server(*self.pg_flags("host=127.0.0.1 port=1 dbname=x connect_timeout=2"))
        self.assertEqual(code, 69, log)
        code, log = self.run_server(*self.pg_flags("this is = not a dsn"))
        self.assertEqual(code, 78, log)
        self.cluster.create_role(f"user_{self.db}", "right-password")
        code, log = self.run_server(*self.pg_flags(self.cluster.dsn(
            user=f"user_{self.db}", password="wrong-password", dbname=self.db)))
        self.assertEqual(code, 78, log)
        self.assertNotIn("wrong-password", log)
        # The lease is held: a second server without --standby exits 75.
        self.start_pg_server(1)
        code, log = self.run_server(*self.pg_flags())
        self.assertEqual(code, 75, log)
        self.assertIn("another server holds the lease", log)
        # A standby waits for it instead; stopped while it waits, it exits 0
        # there and then, without ever listening.
        standby = self.start_other_server(*self.pg_flags(), "--standby")
        self.wait_log(standby, lambda es: any(e.action == "standby" for e in es), timeout=30,
                      what="the standby waiting for the lease")
        standby.signal(signal.SIGTERM)
        self.assertEqual(standby.wait(20), 0, standby.log())
        self.assertNotIn("action: listen", standby.log())
        # A schema of another version.
        self.server.signal(signal.SIGTERM)
        self.assertEqual(self.server.wait(20), 0)
        self.sql("UPDATE lottery_schema SET version = 99")
        code, log = self.run_server(*self.pg_flags())
        self.assertEqual(code, 78, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
