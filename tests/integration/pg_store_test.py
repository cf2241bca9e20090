"""The PostgreSQL backend's database layer (src/storage/pg_store.h) against a
real PostgreSQL 15 that this test starts (tests/lib/pg_cluster.py): runs
the doctest binary pg_store_test with the cluster's DSN; and the fixture's
own promise, a row committed on the primary is on its synchronous standby
once that is promoted."""
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import pg_cluster  # noqa: E402

BUILD = os.environ.get("LOTTERY_BUILD_ROOT", "build")
BINARY = os.environ.get("LOTTERY_PG_STORE_TEST", os.path.join(BUILD, "src", "pg_store_test"))


class PgStoreTest(unittest.TestCase):

    def test_pg_store(self):
        with pg_cluster.PgCluster() as pg:
            pg.create_role("lottery_pw", "right-password")
            env = dict(os.environ,
                       LOTTERY_TEST_PG_DSN=pg.dsn(),
                       LOTTERY_TEST_PG_PASSWORD_DSN=pg.dsn(user="lottery_pw"))
            env.pop("PGPASSWORD", None)
            p = subprocess.run([BINARY], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=240)
            self.assertEqual(p.returncode, 0, p.stdout[-6000:] + p.stderr[-2000:])
            # The binary left no session behind.
            left = pg.sql("SELECT count(*) FROM pg_stat_activity "
                          "WHERE application_name = 'pg_store_test'")
            self.assertEqual(left, "0")

    def test_without_a_dsn_the_binary_fails(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOTTERY_TEST_PG")}
        p = subprocess.run([BINARY], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("LOTTERY_TEST_PG_DSN", p.stdout + p.stderr)

    def test_a_promoted_standby_holds_what_the_primary_committed(self):
        with pg_cluster.PgCluster() as pg:
            standby = pg.add_standby()
            pg.sql("CREATE TABLE t (x int)")
            pg.sql("INSERT INTO t VALUES (42)")  # returns once the standby has it (synchronous)
            pg.stop("immediate")
            standby.promote()
            self.assertEqual(standby.sql("SELECT x FROM t"), "42")
            standby.sql("INSERT INTO t VALUES (43)")  # writable: a primary now
            datadirs = [pg.datadir, standby.datadir]
        for datadir in datadirs:
            self.assertEqual(pg_cluster._pids_in(datadir) if os.path.isdir(datadir) else [], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
