"""lotteryctl rounds, show and verify on storage.backend = "postgresql"
(issue 30: lotteryctl works the same on both backends), against a real
PostgreSQL 15 that the test starts (tests/lib/pg_cluster.py): the backend
and DSN learnt from the server's status or given by flags and environment,
the file backend's output and exit codes, verify recomputing from the rows
and catching one changed bet, and each database error with its exit code,
never printing the DSN's password (docs/man/lotteryctl.8).

One cluster per class, one database per test; loopback only."""
import json
import os
import shlex
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import harness  # noqa: E402
import pg_cluster  # noqa: E402
from harness import make_bets  # noqa: E402

CTL = os.environ.get("LOTTERY_CTL", "build/src/lotteryctl")
EXIT_UNAVAILABLE = 69
EXIT_CONFIG = 78
for name in ("RUNTIME_DIRECTORY", "SERVER_CONTROL_SOCKET", "SERVER_STORAGE_BACKEND",
             "SERVER_STORAGE_DSN", "PGPASSWORD", "PGPASSFILE"):
    os.environ.pop(name, None)


def deploy_dump_tables():
    """The -t arguments of docs/DEPLOY.md's pg_dump command (its backups)."""
    docs = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "docs", "DEPLOY.md")
    with open(docs, encoding="utf-8") as f:
        text = f.read()
    start = text.index("pg_dump -U lottery")
    command = text[start:text.index("> lottery-", start)].replace("\\\n", " ")
    words = shlex.split(command)
    return [words[i + 1] for i, w in enumerate(words) if w == "-t"]


class LotteryctlPgTest(pg_cluster.ClusterPerClass, harness.LotteryTest):
    DB_PREFIX = "ctl"

    def ctl(self, *args, socket=None, env=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        return subprocess.run([CTL, "--socket", socket or self.path("bets.csv.control"), *args],
                              capture_output=True, text=True, timeout=60, env=full_env)

    def ctl_ok(self, *args, **kw):
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout

    def direct(self, *args, dsn=None):
        """lotteryctl given the database in full: no server asked (a socket nobody serves)."""
        return self.ctl("--storage-backend", "postgresql", "--storage-dsn", dsn or self.dsn, *args,
                        socket=self.path("nobody.control"))

    def play(self, per_agency):
        procs = {a: self.start_agency(a, self.agency_file(a, bets), batch=30)
                 for a, bets in per_agency.items()}
        winners = {}
        for a, p in procs.items():
            self.assertEqual(p.wait(90), 0, p.log()[-3000:])
            winners[a] = p.stdout().split()
            self.assertEqual(sorted(winners[a]),
                             sorted(b[2] for b in per_agency[a] if b[4] == 7574))
        return winners

    def test_rounds_show_and_verify_read_the_database(self):
        per_agency = {1: make_bets(1, 300, winners=4), 2: make_bets(2, 250, winners=5)}
        self.start_server(agencies=2, extra=["--storage-backend", "postgresql",
                                             "--storage-dsn", self.dsn])
        # Before the draw: the current round is in the database, open.
        self.assertEqual(json.loads(self.ctl_ok("--json", "rounds"))["rounds"],
                         [{"round": 1, "state": "open", "bets": 0, "winners": 0, "drawn_at": 0}])
        early = self.ctl("show", "1")
        self.assertEqual(early.returncode, 1, early.stdout + early.stderr)
        self.assertEqual(early.stderr, "lotteryctl: round 1 is open, not drawn\n")
        winners = self.play(per_agency)

        status = json.loads(self.ctl_ok("--json", "status"))
        self.assertEqual(status["storage_backend"], "postgresql")
        self.assertIn(f"dbname='{self.db}'", status["storage_dsn"])

        # rounds: learnt from the server, or the database given in full.
        rounds = json.loads(self.ctl_ok("--json", "rounds"))["rounds"]
        self.assertEqual([(r["round"], r["state"], r["bets"], r["winners"]) for r in rounds],
                         [(1, "drawn", 550, 9)])
        self.assertGreater(rounds[0]["drawn_at"], 1_700_000_000)
        table = self.ctl_ok("rounds")
        self.assertEqual(table.splitlines()[0].split(), ["round", "state", "bets", "winners",
                                                         "drawn_at"])
        self.assertEqual(table.splitlines()[1].split()[:4], ["1", "drawn", "550", "9"])
        direct = self.direct("rounds")
        self.assertEqual((direct.returncode, direct.stdout), (0, table), direct.stderr)

        # show 1 --winners: the winners the agencies got.
        shown = json.loads(self.ctl_ok("--json", "show", "1", "--winners"))
        self.assertEqual((shown["round"], shown["winning_number"], shown["bets"], shown["winners"]),
                         (1, 7574, 550, 9))
        self.assertEqual({a["agency"]: (a["took_part"], sorted(a["documents"]))
                          for a in shown["agencies"]},
                         {a: (True, sorted(w)) for a, w in winners.items()})
        text = self.ctl_ok("show", "1", "--winners")
        self.assertIn("round: 1\nwinning_number: 7574\nbets: 550\nwinners: 9\n", text)
        self.assertIn("agency 1: took part, 4 winners\n", text)
        self.assertIn("agency 2: took part, 5 winners\n", text)
        for doc in winners[1] + winners[2]:
            self.assertIn(f"  {doc}\n", text)
        self.assertNotIn(winners[1][0], self.ctl_ok("show", "1"))  # documents only with --winners
        self.assertEqual(self.direct("show", "1", "--winners").stdout, text)
        missing = self.ctl("--json", "show", "2")
        self.assertEqual(missing.returncode, 1, missing.stdout + missing.stderr)
        self.assertEqual(json.loads(missing.stdout),
                         {"ok": False, "error": "no round 2: the current round is 1"})

        # verify 1 recomputes from the rows.
        self.assertEqual(self.ctl_ok("verify", "1"),
                         "round 1: verified, the archive matches its record\n")
        self.assertEqual(json.loads(self.ctl_ok("--json", "verify", "1")),
                         {"ok": True, "round": 1, "differences": []})
        self.assertEqual(self.direct("verify", "1").returncode, 0)

        # open: round 1 is archived, round 2 open, both in the database.
        self.ctl_ok("open")
        rounds = json.loads(self.ctl_ok("--json", "rounds"))["rounds"]
        self.assertEqual([(r["round"], r["state"], r["bets"], r["winners"]) for r in rounds],
                         [(1, "archived", 550, 9), (2, "open", 0, 0)])
        self.assertEqual(self.ctl_ok("verify", "1"),
                         "round 1: verified, the archive matches its record\n")
        self.check_backup_restores(text)

        # One winning bet's number changed in the database: verify says so, exit 1.
        doc = winners[1][0]
        self.sql(f"UPDATE bets SET number = 1234 WHERE round = 1 AND agency = 1 AND document = '{doc}'")
        broken = self.ctl("verify", "1")
        self.assertEqual(broken.returncode, 1, broken.stdout + broken.stderr)
        self.assertIn("round 1: agency 1: 3 winners in the rows, 4 in the result\n", broken.stdout)
        self.assertIn("round 1: SHA-256 of the rows' digests is", broken.stdout)
        self.assertEqual(broken.stderr, "lotteryctl: round 1 does not match its record\n")
        as_json = self.ctl("--json", "verify", "1")
        self.assertEqual(as_json.returncode, 1, as_json.stderr)
        verdict = json.loads(as_json.stdout)
        self.assertEqual((verdict["ok"], verdict["round"]), (False, 1))
        self.assertIn("agency 1: 3 winners in the rows, 4 in the result", verdict["differences"])
        self.assertEqual(self.direct("verify", "1").returncode, 1)
        # The recorded result is unchanged: show still prints it.
        self.assertEqual(self.ctl_ok("show", "1", "--winners"), text)

    def check_backup_restores(self, shown):
        """docs/DEPLOY.md's pg_dump of the lottery's tables, restored into an
        empty database, gives the same rounds and verifies: no table (nor a
        partition of bets) is left out."""
        tables = deploy_dump_tables()
        cluster = self.cluster
        dump = [*cluster.client("pg_dump", self.db), "-Fc", "-f", "lottery.dump"]
        for table in tables:
            dump += ["-t", table]
        cluster.run(dump)
        restored = f"{self.db}_restored"
        cluster.sql(f"CREATE DATABASE {restored}", dbname="postgres")
        cluster.run([*cluster.client("pg_restore", restored), "lottery.dump"])
        dsn = cluster.dsn(dbname=restored)
        self.assertEqual(self.direct("rounds", dsn=dsn).stdout, self.direct("rounds").stdout)
        self.assertEqual(self.direct("show", "1", "--winners", dsn=dsn).stdout, shown)
        verified = self.direct("verify", "1", dsn=dsn)
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        self.assertEqual(cluster.sql("SELECT count(*) FROM bets", dbname=restored),
                         self.sql("SELECT count(*) FROM bets"))
        self.assertEqual(cluster.sql("SELECT count(*) FROM winners", dbname=restored),
                         self.sql("SELECT count(*) FROM winners"))

    def test_a_password_is_never_printed_and_comes_from_libpq(self):
        password = "pw-never-printed-42"
        role = f"user_{self.db}"
        self.cluster.create_role(role, password)
        self.sql(f"ALTER DATABASE {self.db} OWNER TO {role}")
        self.sql(f"ALTER SCHEMA public OWNER TO {role}")
        secret_dsn = self.cluster.dsn(user=role, password=password, dbname=self.db)
        self.start_server(agencies=1, extra=["--storage-backend", "postgresql",
                                             "--storage-dsn", secret_dsn])
        self.play({1: make_bets(1, 120, winners=3)})
        outputs = []
        # The server reports its DSN without the password: lotteryctl takes it
        # from libpq's sources (PGPASSWORD here), or fails 78 without one.
        status = self.ctl("--json", "status")
        outputs.append(status.stdout + status.stderr)
        self.assertEqual(json.loads(status.stdout)["storage_dsn"].find("password"), -1)
        refused = self.ctl("rounds")
        outputs.append(refused.stdout + refused.stderr)
        self.assertEqual(refused.returncode, EXIT_CONFIG, refused.stdout + refused.stderr)
        self.assertTrue(refused.stderr.startswith("lotteryctl: cannot connect to PostgreSQL"),
                        refused.stderr)
        with_env = self.ctl("rounds", env={"PGPASSWORD": password})
        outputs.append(with_env.stdout + with_env.stderr)
        self.assertEqual(with_env.returncode, 0, with_env.stderr)
        self.assertEqual(with_env.stdout.splitlines()[1].split()[:4], ["1", "drawn", "120", "3"])
        # The DSN in the environment, as the server's own variables.
        from_env = self.ctl("--json", "verify", "1", env={"SERVER_STORAGE_BACKEND": "postgresql",
                                                          "SERVER_STORAGE_DSN": secret_dsn})
        outputs.append(from_env.stdout + from_env.stderr)
        self.assertEqual(from_env.returncode, 0, from_env.stderr)
        wrong = self.direct("--json", "rounds", dsn=secret_dsn.replace(password, "wrong-" + password))
        outputs.append(wrong.stdout + wrong.stderr)
        self.assertEqual(wrong.returncode, EXIT_CONFIG, wrong.stdout + wrong.stderr)
        self.assertFalse(json.loads(wrong.stdout)["ok"])
        for out in outputs:
            self.assertNotIn(password, out)

    def test_database_errors_have_their_exit_codes(self):
        # A DSN that does not parse: 78, in lotteryctl's error style.
        bad = self.direct("rounds", dsn="this is = not a dsn")
        self.assertEqual(bad.returncode, EXIT_CONFIG, bad.stdout + bad.stderr)
        self.assertTrue(bad.stderr.startswith("lotteryctl: the PostgreSQL DSN does not parse"),
                        bad.stderr)
        self.assertEqual(bad.stdout, "")
        bad_json = self.direct("--json", "show", "1", dsn="this is = not a dsn")
        self.assertEqual(bad_json.returncode, EXIT_CONFIG)
        self.assertFalse(json.loads(bad_json.stdout)["ok"])
        # Nobody listens: 69, as for a server that is down.
        down = self.direct("verify", "1", dsn=f"host=127.0.0.1 port={harness.free_port()} "
                                              "dbname=x connect_timeout=2")
        self.assertEqual(down.returncode, EXIT_UNAVAILABLE, down.stdout + down.stderr)
        self.assertTrue(down.stderr.startswith("lotteryctl: cannot connect to PostgreSQL"),
                        down.stderr)
        # A database no lottery-server has used: 78, and lotteryctl creates nothing.
        empty = self.direct("rounds")
        self.assertEqual(empty.returncode, EXIT_CONFIG, empty.stdout + empty.stderr)
        self.assertIn("no lottery schema", empty.stderr)
        self.assertEqual(self.sql("SELECT to_regclass('lottery_schema') IS NULL"), "t")
        # postgresql without a DSN asks the server for it: none running, 69.
        no_dsn = self.ctl("--storage-backend", "postgresql", "rounds",
                          socket=self.path("nobody.control"))
        self.assertEqual(no_dsn.returncode, EXIT_UNAVAILABLE, no_dsn.stdout + no_dsn.stderr)
        # A backend that does not exist: usage.
        self.assertEqual(self.ctl("--storage-backend", "sqlite", "rounds").returncode, 64)


if __name__ == "__main__":
    unittest.main(verbosity=2)
