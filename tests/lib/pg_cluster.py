"""Throwaway PostgreSQL 15 clusters for tests: initdb and postgres in a
temporary directory, TCP on 127.0.0.1 only, on a free port.

    with PgCluster() as pg:
        pg.dsn()                       # superuser `lottery`, database `lottery`
        pg.sql("SELECT 1")
        pg.create_role("alice", "secret")   # password-checked (scram-sha-256)
        standby = pg.add_standby()     # streaming, synchronous
        pg.stop("immediate"); standby.promote()

Loopback connections are trusted, except roles made by create_role(), which
must give their password. Every process is started with PR_SET_PDEATHSIG
(it dies if the test dies, even by SIGKILL), the servers in their own
process group; close() (or leaving the `with`) kills whatever is left, the
backends too, and removes the directory. When run as root, the servers run
as the `postgres` user (PostgreSQL refuses root), as tools/bench_postgres.py
does.
"""
import grp
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

# The benchmark's cluster runs its processes the same way (PR_SET_PDEATHSIG,
# found by their working directory).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools"))
from bench_postgres import _cluster_pids as _pids_in, _pdeathsig, _reap_cluster  # noqa: E402

BINDIR = os.environ.get("LOTTERY_PG_BINDIR", "/usr/lib/postgresql/15/bin")
SUPERUSER = "lottery"
DATABASE = "lottery"
PASSWORD_GROUP = "password_users"


class PgError(Exception):
    pass


def available():
    """Whether PostgreSQL's server programs are installed (Debian `postgresql`)."""
    return os.access(os.path.join(BINDIR, "postgres"), os.X_OK)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """One postgres server (primary or standby) over `datadir`, on `port`."""

    def __init__(self, owner, name, port):
        self.owner = owner
        self.name = name
        self.port = port
        self.datadir = os.path.join(owner.root, name)
        self.logfile = os.path.join(owner.root, name + ".log")
        self.proc = None

    # -- what tests use

    def dsn(self, user=SUPERUSER, password=None, dbname=DATABASE, **extra):
        parts = [f"host=127.0.0.1 port={self.port} dbname={dbname} user={user}"]
        if password is not None:
            parts.append(f"password={password}")
        parts += [f"{k}={v}" for k, v in extra.items()]
        return " ".join(parts)

    def client(self, tool, dbname=DATABASE):
        """The argv of PostgreSQL client `tool` (psql, pg_dump, pg_restore)
        connected to `dbname` as the superuser; options follow."""
        return [os.path.join(BINDIR, tool), "-h", "127.0.0.1", "-p", str(self.port),
                "-U", SUPERUSER, "-d", dbname]

    def sql(self, statement, dbname=DATABASE):
        """Runs one statement with psql; returns its unaligned, tuples-only output."""
        return self.owner.run([*self.client("psql", dbname), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-A", "-t", "-c", statement]).strip()

    def stop(self, mode="fast"):
        """Shuts down: "smart", "fast" or "immediate" (no checkpoint, as a crash)."""
        sig = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reap()

    def kill(self):
        """SIGKILL to the postmaster and every backend: the machine lost power."""
        for pid in _pids_in(self.datadir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.kill()
            except OSError:
                pass
            self.proc.wait()
        self._reap()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def promote(self, timeout=60):
        """A standby becomes a primary (pg_promote, waiting until it is)."""
        if self.sql(f"SELECT pg_promote(true, {int(timeout)})") != "t":
            raise PgError(f"{self.name}: not promoted within {timeout} s")

    # -- machinery

    def start(self, timeout=60.0):
        with open(self.logfile, "ab") as log:
            self.proc = subprocess.Popen(
                [os.path.join(BINDIR, "postgres"), "-D", self.datadir], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=self.owner.root, start_new_session=True,
                **self.owner.popen_args())
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise PgError(f"{self.name}: postgres exited with {self.proc.returncode}:\n"
                              + self.log_tail())
            try:
                if self.owner.run([os.path.join(BINDIR, "pg_isready"), "-q", "-h", "127.0.0.1",
                                   "-p", str(self.port)], check=False) is not None:
                    return
            except PgError:
                pass
            if time.monotonic() > deadline:
                raise PgError(f"{self.name}: not ready after {timeout} s:\n" + self.log_tail())
            time.sleep(0.05)

    def _reap(self):
        """Backends outlive their postmaster briefly; none may outlive the test."""
        _reap_cluster(self.datadir, poll=0.05)

    def log_tail(self, lines=20):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


def _check_reachable(path, user):
    """Raises PgError naming the first directory on the way to `path` that
    `user` may not search: PostgreSQL refuses to run as root, so its
    programs run as that user and must be reachable by it."""
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem}
    current = "/"
    for part in [""] + [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        st = os.stat(current)
        if st.st_uid == user.pw_uid:
            allowed = st.st_mode & 0o100
        elif st.st_gid in groups:
            allowed = st.st_mode & 0o010
        else:
            allowed = st.st_mode & 0o001
        if not allowed:
            raise PgError(f"the {user.pw_name} user cannot search {current} (mode "
                          f"{stat.S_IMODE(st.st_mode):04o}), so it cannot run {path}: PostgreSQL "
                          "refuses to run as root. A Debian system has / at 0755; a container "
                          "image built with / at 0700 cannot run these tests as root")


class PgCluster(_Server):
    """A primary: created and started on construction."""

    def __init__(self, root=None):
        self.root = tempfile.mkdtemp(prefix="lottery-pg-", dir=root)
        self.user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", TZ="UTC", PGCONNECT_TIMEOUT="10")
        if self.user is not None:
            env.update(HOME=self.root, USER="postgres", LOGNAME="postgres")
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.env = env
        self.standbys = []
        super().__init__(self, "primary", free_port())
        if self.user is not None:
            _check_reachable(BINDIR, self.user)
        try:
            self._create()
            self.start()
            self.sql(f"CREATE DATABASE {DATABASE}", dbname="postgres")
            self.sql(f"CREATE ROLE {PASSWORD_GROUP} NOLOGIN")
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def popen_args(self):
        kw = {"env": self.env, "preexec_fn": _pdeathsig(signal.SIGKILL)}
        if self.user is not None:
            kw.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return kw

    def run(self, argv, check=True, timeout=120):
        """Runs argv as the cluster's user; returns its stdout (None: it failed, unchecked)."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=self.root, **self.popen_args())
        try:
            out, err = p.communicate(timeout=timeout)
        except BaseException:
            p.kill()
            p.wait()
            raise
        if p.returncode != 0:
            if check:
                raise PgError(f"{os.path.basename(argv[0])} exit {p.returncode}: "
                              f"{err.strip() or out.strip()}")
            return None
        return out

    def create_role(self, name, password):
        """A login role that must give `password` (scram-sha-256), even on loopback."""
        self.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {PASSWORD_GROUP}")
        self.sql(f"GRANT ALL ON DATABASE {DATABASE} TO {name}")
        self.sql(f"GRANT ALL ON SCHEMA public TO {name}")

    def add_standby(self, timeout=60.0):
        """A streaming standby (pg_basebackup -R -X stream), then made synchronous."""
        standby = _Server(self, f"standby{len(self.standbys) + 1}", free_port())
        self.standbys.append(standby)
        self.run([os.path.join(BINDIR, "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", SUPERUSER, "-D", standby.datadir, "-R", "-X", "stream", "-c", "fast", "--no-sync"])
        with open(os.path.join(standby.datadir, "postgresql.conf"), "a", encoding="utf-8") as f:
            f.write(f"\nport = {standby.port}\n")
        standby.start(timeout)
        self.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while self.sql("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'") == "0":
            if time.monotonic() > deadline:
                raise PgError(f"{standby.name}: not a synchronous standby after {timeout} s")
            time.sleep(0.05)
        return standby

    def close(self):
        """Kills every server of the cluster and removes its directory."""
        for server in self.standbys + [self]:
            server.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def _create(self):
        self.run([os.path.join(BINDIR, "initdb"), "-D", self.datadir, "-U", SUPERUSER, "-E", "UTF8",
                  "--no-locale", "--auth=trust", "--no-sync"])
        with open(os.path.join(self.datadir, "postgresql.conf"), "a", encoding="utf-8") as f:
            f.write("\n# tests/lib/pg_cluster.py: loopback TCP only\n"
                    "listen_addresses = '127.0.0.1'\n"
                    "unix_socket_directories = ''\n"
                    f"port = {self.port}\n"
                    "wal_level = replica\nmax_wal_senders = 5\nfsync = on\n")
        with open(os.path.join(self.datadir, "pg_hba.conf"), "w", encoding="utf-8") as f:
            f.write(f"host all +{PASSWORD_GROUP} 127.0.0.1/32 scram-sha-256\n"
                    "host all all 127.0.0.1/32 trust\n"
                    "host replication all 127.0.0.1/32 trust\n")


class ClusterPerClass:
    """A unittest mixin: one cluster per test class, a fresh database per
    test (self.db, self.dsn, self.sql). Put it before the TestCase base."""
    cluster = None
    databases = 0
    DB_PREFIX = "round"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cluster = PgCluster()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        type(self).databases += 1
        self.db = f"{self.DB_PREFIX}_{type(self).databases}"
        self.cluster.sql(f"CREATE DATABASE {self.db}", dbname="postgres")
        self.dsn = self.cluster.dsn(dbname=self.db)

    def sql(self, statement):
        return self.cluster.sql(statement, dbname=self.db)
