#!/usr/bin/env python3
"""PostgreSQL 15 ingesting the agencies' bets: the baseline of docs/PERFORMANCE.md. To say
what our server's ingest rate is worth, this loads the same agency CSV files into a
general-purpose database doing the same durable job: a private, throwaway PostgreSQL 15
cluster with its durable defaults (fsync=on, synchronous_commit=on, full_page_writes=on,
default WAL settings; a logged table), fed as the agencies feed our server, one client
(`psql`, over a Unix socket in the cluster's temp dir, no TCP) per agency file, all
started at once, each committing every 150 rows (one multi-row INSERT per transaction),
or, with mode "copy" (--mode copy), each loading its whole file with one COPY FROM STDIN
in CSV format: PostgreSQL's fastest durable load, one commit per agency.
The SQL scripts are written before the clock starts; each run starts from an empty,
checkpointed table and is timed from the start of the first psql to the exit of the
last, every exit code is checked and the rows per agency are counted afterwards. It
prints rows/s per run and the median, min and max over the runs (optionally as JSON;
run_postgres_bench() returns the same dict to tools/bench.py). The server is always
stopped and its temp dir removed, on errors and Ctrl-C too; as root, the cluster and
its clients run as `postgres` (else `nobody`), as PostgreSQL refuses to run as root.
Exit codes: 0 done, 1 failure, 2 usage, 66 no input files, 77 PostgreSQL 15 missing
(see --install), 130/143 interrupted.
"""
import argparse
import csv
import datetime
import glob
import json
import os
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BINDIR = "/usr/lib/postgresql/15/bin"
REQUIRED_BINARIES = ("postgres", "initdb", "pg_ctl", "psql")
DEBIAN_PACKAGE = "postgresql-15"
EXIT_SKIP = 77
PORT = 5432                      # the socket sits in a private dir: no clash possible
SUPERUSER = "bench"
DATABASE = "bench"
CREATE_TABLE = ("CREATE TABLE bets (agency int not null, first_name text not null, "
                "last_name text not null, document text not null, birthdate date not null, "
                "number int not null)")
# Reported (and checked where it matters) so the baseline says what it ran with.
SETTINGS = ("fsync", "synchronous_commit", "full_page_writes", "wal_level", "wal_sync_method",
            "wal_buffers", "commit_delay", "max_wal_size", "shared_buffers")
MUST_BE_ON = ("fsync", "synchronous_commit", "full_page_writes")
UNIX_PATH_MAX = 107              # sun_path is 108 bytes with the NUL
RUN_TIMEOUT = 3600.0             # seconds for one run of all clients


class BenchError(RuntimeError):
    """The benchmark could not run or its result is wrong."""


class PostgresMissing(BenchError):
    """PostgreSQL 15 server binaries are not installed."""


# --------------------------------------------------------------------------- install

def missing_binaries(bindir: str = None) -> list:
    bindir = bindir or BINDIR
    return [b for b in REQUIRED_BINARIES if not os.access(os.path.join(bindir, b), os.X_OK)]


def _online_clusters() -> set:
    """(version, name) of the Debian system clusters that are running now."""
    if not shutil.which("pg_lsclusters"):
        return set()
    out = subprocess.run(["pg_lsclusters", "-h"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, check=False).stdout
    online = set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[3].startswith("online"):
            online.add((f[0], f[1]))
    return online


def install_postgres(log=print) -> None:
    """Installs Debian's postgresql-15 with apt-get, without leaving its system cluster running."""
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        raise BenchError("installing postgresql-15 needs root or sudo")
    apt = sudo + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    before = _online_clusters()
    policy = "/usr/sbin/policy-rc.d"
    made_policy = False
    if not os.path.exists(policy):
        # invoke-rc.d asks policy-rc.d; 101 = "action forbidden": the package's
        # postinst then does not start the cluster it creates.
        subprocess.run(sudo + ["sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' > {policy} && "
                               f"chmod 755 {policy}"], check=True)
        made_policy = True
    try:
        log(f"installing {DEBIAN_PACKAGE} with apt-get")
        subprocess.run(apt + ["update", "-qq"], check=True)
        subprocess.run(apt + ["install", "-y", "-qq", "--no-install-recommends", DEBIAN_PACKAGE],
                       check=True)
    except subprocess.CalledProcessError as e:
        raise BenchError(f"apt-get failed (exit {e.returncode}) installing {DEBIAN_PACKAGE}") from e
    finally:
        if made_policy:
            subprocess.run(sudo + ["rm", "-f", policy], check=False)
    for version, name in sorted(_online_clusters() - before):
        log(f"stopping the system cluster {version}/{name} the package started")
        subprocess.run(sudo + ["pg_ctlcluster", version, name, "stop"], check=False)
    if missing_binaries():
        raise BenchError(f"{DEBIAN_PACKAGE} installed but {BINDIR} still lacks "
                         + ", ".join(missing_binaries()))


# --------------------------------------------------------------------------- data

def natural_key(path: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", os.path.basename(path))]


def agency_ids(files: list) -> list:
    """The number in each file name (agency-3.csv -> 3) if they are all distinct, else 1..N."""
    ids = []
    for path in files:
        m = re.search(r"(\d+)\D*$", os.path.basename(path))
        ids.append(int(m.group(1)) if m else None)
    if None in ids or len(set(ids)) != len(ids) or any(i > 2**31 - 1 for i in ids):
        ids = list(range(1, len(files) + 1))
    return ids


def sql_literal(text: str) -> str:
    """A standard-conforming SQL string literal (standard_conforming_strings=on)."""
    if "\x00" in text:
        raise ValueError("NUL character")
    return "'" + text.replace("'", "''") + "'"


_INT = re.compile(r"-?[0-9]+\Z")


def read_bets(path: str):
    """Yields (first_name, last_name, document, birthdate, number) per line, validated."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        try:
            for fields in reader:
                if not fields:                       # blank line
                    continue
                where = f"{path}:{reader.line_num}"
                if len(fields) != 5:
                    raise BenchError(f"{where}: {len(fields)} fields, expected 5")
                first, last, document, birth, number = fields
                if not first or not last or not document:
                    raise BenchError(f"{where}: empty name or document")
                try:
                    birthdate = datetime.date.fromisoformat(birth)
                except ValueError:
                    raise BenchError(f"{where}: bad birthdate {birth!r}") from None
                if not _INT.match(number) or not -2**31 <= int(number) < 2**31:
                    raise BenchError(f"{where}: bad number {number!r}")
                yield first, last, document, birthdate.isoformat(), int(number)
        except csv.Error as e:
            raise BenchError(f"{path}:{reader.line_num}: {e}") from None
        except UnicodeDecodeError as e:
            raise BenchError(f"{path}: not UTF-8: {e}") from None


def write_script(csv_path: str, agency: int, batch: int, out_path: str,
                 mode: str = "insert") -> int:
    """Writes the agency's SQL: one autocommitted multi-row INSERT per `batch` rows, or with
    mode "copy" one COPY of all rows (inline CSV data). Returns rows."""
    if mode == "copy":
        return _write_copy_script(csv_path, agency, out_path)
    rows = 0
    pending = []
    with open(out_path, "w", encoding="utf-8", newline="\n") as out:
        out.write("SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n")

        def flush():
            out.write("INSERT INTO bets VALUES\n")
            out.write(",\n".join(pending))
            out.write(";\n")
            pending.clear()

        for first, last, document, birth, number in read_bets(csv_path):
            try:
                pending.append(f"({agency},{sql_literal(first)},{sql_literal(last)},"
                               f"{sql_literal(document)},'{birth}',{number})")
            except ValueError as e:
                raise BenchError(f"{csv_path}: row {rows + 1}: {e}") from None
            rows += 1
            if len(pending) == batch:
                flush()
        if pending:
            flush()
    return rows


def _write_copy_script(csv_path: str, agency: int, out_path: str) -> int:
    rows = 0
    with open(out_path, "w", encoding="utf-8", newline="\n") as out:
        out.write("SET client_encoding = 'UTF8';\n"
                  "COPY bets FROM STDIN WITH (FORMAT csv);\n")
        writer = csv.writer(out, lineterminator="\n")
        for first, last, document, birth, number in read_bets(csv_path):
            text = first + last + document
            if "\x00" in text:
                raise BenchError(f"{csv_path}: row {rows + 1}: NUL character")
            # psql ends inline COPY data at a line "\." even inside quotes.
            if "\n\\.\n" in "\n" + text.replace("\r", "\n") + "\n":
                raise BenchError(f"{csv_path}: row {rows + 1}: a line \\. inside a field")
            writer.writerow([agency, first, last, document, birth, number])
            rows += 1
        out.write("\\.\n")
    return rows


# --------------------------------------------------------------------------- processes

def _pdeathsig(sig: int):
    """A preexec_fn making the child get `sig` if we die (even by SIGKILL): no orphan servers."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None

    def set_it():
        prctl(1, sig, 0, 0, 0)                       # PR_SET_PDEATHSIG
    return set_it


def _cluster_pids(datadir: str) -> list:
    """Processes whose working dir is the data dir: the postmaster chdirs there, its children inherit."""
    real = os.path.realpath(datadir)
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == real:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def _reap_cluster(datadir: str, grace=10.0, poll=0.1) -> None:
    """Backends outlive a killed postmaster only briefly; waits until none is left, killing them after `grace` s."""
    deadline = time.monotonic() + grace
    while os.path.isdir(datadir):
        pids = _cluster_pids(datadir)
        if not pids:
            break
        if time.monotonic() > deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(poll)


class _Cluster:
    """A private PostgreSQL cluster in `root`: data in root/data, socket in root."""

    def __init__(self, root: str, bindir: str, log):
        self.root = root
        self.bindir = bindir
        self.datadir = os.path.join(root, "data")
        self.logfile = os.path.join(root, "postgres.log")
        self.log = log
        self.proc = None
        self.last_returncode = None
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    pass
            if self.user is None:
                raise BenchError("running as root, but neither a `postgres` nor a `nobody` user "
                                 "exists to run PostgreSQL as")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", PGCLIENTENCODING="UTF8", TZ="UTC")
        if self.user is not None:
            env.update(HOME=root, USER=self.user.pw_name, LOGNAME=self.user.pw_name)
        self.env = env
        sock = os.path.join(root, f".s.PGSQL.{PORT}")
        if len(sock.encode()) > UNIX_PATH_MAX:
            raise BenchError(f"socket path too long for a Unix socket ({len(sock)} bytes): {sock}; "
                             "use a shorter --work-dir")

    def popen_args(self, sig=signal.SIGKILL) -> dict:
        """Popen keywords running a child as the cluster's user, dying with us."""
        kw = {"env": self.env, "preexec_fn": _pdeathsig(sig)}
        if self.user is not None:
            kw.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        return kw

    def run(self, argv, check=True, timeout=600.0) -> str:
        """Runs argv as the cluster's user; the child is killed and reaped if we are interrupted."""
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=self.root, **self.popen_args())
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            raise BenchError(f"{os.path.basename(argv[0])} took over {timeout:.0f} s") from None
        except BaseException:
            p.kill()
            p.wait()
            raise
        self.last_returncode = p.returncode
        if check and p.returncode != 0:
            raise BenchError(f"{os.path.basename(argv[0])} failed (exit {p.returncode}): "
                             f"{err.strip() or out.strip()}")
        return out

    def psql_argv(self, database=DATABASE) -> list:
        return [os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-h", self.root, "-p", str(PORT), "-U", SUPERUSER, "-d", database]

    def sql(self, statement: str, database=DATABASE) -> str:
        return self.run(self.psql_argv(database) + ["-A", "-t", "-c", statement]).strip()

    def create(self) -> None:
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            self.run(["test", "-w", self.root, "-a", "-x", self.root], check=False, timeout=30)
            if self.last_returncode != 0:
                raise BenchError(f"user {self.user.pw_name} cannot write {self.root} (a parent "
                                 "directory is closed to it?); use another --work-dir")
        # Only what initdb needs to know: no -N/--no-sync, no durability switches.
        self.run([os.path.join(self.bindir, "initdb"), "-D", self.datadir, "-U", SUPERUSER,
                  "-E", "UTF8", "--no-locale", "--auth=trust"])
        quoted = self.root.replace("'", "''")
        with open(os.path.join(self.datadir, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.write("\n# bench_postgres.py: Unix socket in the private dir only, no TCP\n"
                       "listen_addresses = ''\n"
                       f"unix_socket_directories = '{quoted}'\n"
                       "unix_socket_permissions = 0700\n"
                       f"port = {PORT}\n")

    def start(self, timeout=60.0) -> None:
        with open(self.logfile, "ab") as logf:
            # Own session: a Ctrl-C reaches us, and we stop the server in order.
            # If we die anyway, SIGQUIT (immediate shutdown) reaches it.
            self.proc = subprocess.Popen([os.path.join(self.bindir, "postgres"), "-D", self.datadir],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         cwd=self.root, start_new_session=True,
                                         **self.popen_args(signal.SIGQUIT))
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"postgres exited with {self.proc.returncode} at start-up:\n"
                                 + self.log_tail())
            out = self.run(self.psql_argv("postgres") + ["-A", "-t", "-c", "SELECT 1"],
                           check=False, timeout=30)
            if self.last_returncode == 0 and out.strip() == "1":
                return
            if time.monotonic() > deadline:
                raise BenchError(f"postgres not accepting connections after {timeout:.0f} s:\n"
                                 + self.log_tail())
            time.sleep(0.1)

    def log_tail(self, lines=20) -> str:
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self) -> None:
        """Fast shutdown; pg_ctl stop -m immediate if that hangs; then SIGKILL. Never raises."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)          # fast shutdown
                proc.wait(timeout=60)
            except (subprocess.TimeoutExpired, OSError):
                self.log("postgres: fast shutdown hangs, trying pg_ctl stop -m immediate")
                try:
                    self.run([os.path.join(self.bindir, "pg_ctl"), "stop", "-D", self.datadir,
                              "-m", "immediate", "-w", "-t", "15"], check=False, timeout=30)
                    proc.wait(timeout=15)
                except (subprocess.TimeoutExpired, OSError, BenchError):
                    proc.kill()
                    proc.wait()
        _reap_cluster(self.datadir)


# --------------------------------------------------------------------------- benchmark

class _Signals:
    """While running: SIGTERM/SIGHUP raise SystemExit (so cleanup runs); during cleanup, all are ignored."""
    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.active = threading.current_thread() is threading.main_thread()
        self.saved = {}

    def __enter__(self):
        if self.active:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) == signal.SIG_DFL:
                    self.saved[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    def shield(self):
        if self.active:
            for sig in self.SIGNALS:
                self.saved.setdefault(sig, signal.getsignal(sig))
                signal.signal(sig, signal.SIG_IGN)

    def __exit__(self, *exc):
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)
        return False


def _kill_all(procs) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _one_run(cluster: _Cluster, scripts: list, expected: dict, timeout: float) -> float:
    """Starts one psql per script at once; returns seconds from the first start to the last exit."""
    procs, errs = [], []
    try:
        for agency, script in scripts:
            errs.append(open(os.path.join(cluster.root, f"psql-{agency}.err"), "w+b"))
        argv = cluster.psql_argv()
        kw = cluster.popen_args()
        start = time.perf_counter()
        for (agency, script), err in zip(scripts, errs):
            procs.append(subprocess.Popen(argv + ["-f", script], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=err,
                                          cwd=cluster.root, **kw))
        deadline = time.monotonic() + timeout
        for p in procs:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        seconds = time.perf_counter() - start
        failures = []
        for (agency, _), p, err in zip(scripts, procs, errs):
            if p.returncode != 0:
                err.seek(0)
                text = err.read().decode("utf-8", "replace").strip()[-2000:]
                failures.append(f"agency {agency}: psql exit {p.returncode}: {text}")
        if failures:
            raise BenchError("loading failed:\n  " + "\n  ".join(failures))
    except subprocess.TimeoutExpired:
        raise BenchError(f"a run took over {timeout:.0f} s; gave up") from None
    finally:
        _kill_all(procs)
        for err in errs:
            err.close()
    got = {}
    for line in cluster.sql("SELECT agency, count(*) FROM bets GROUP BY agency").splitlines():
        agency, count = line.split("|")
        got[int(agency)] = int(count)
    if got != {a: n for a, n in expected.items() if n}:
        raise BenchError(f"row counts per agency differ: expected {expected}, found {got}")
    total = int(cluster.sql("SELECT count(*) FROM bets"))
    if total != sum(expected.values()):
        raise BenchError(f"SELECT count(*) = {total}, expected {sum(expected.values())}")
    return seconds


def run_postgres_bench(dataset_files, runs=3, batch=150, work_dir=None, *,
                       progress=None, bindir=None, mode="insert", between=None) -> dict:
    """Loads dataset_files (one agency CSV each) `runs` times into a private PostgreSQL 15.

    Returns {"rows", "clients", "batch", "runs": [{"rows", "seconds", "rows_per_s"}...],
    "median_rows_per_s", "min_rows_per_s", "max_rows_per_s", "postgres_version", "settings"}.
    progress(kind, text) gets "setup" notes and one "run" line per run.
    between(dsn), when given, runs after each load in the same cluster (a
    lottery round on the postgresql backend, alternated with the loads): it
    gets a DSN to a fresh database and its results are returned under
    "between". Raises
    PostgresMissing if the server binaries are absent, BenchError on any failure.
    """
    def say(kind, text):
        if progress:
            progress(kind, text)

    bindir = bindir or BINDIR
    files = sorted((os.fspath(f) for f in dataset_files), key=natural_key)
    if not files:
        raise BenchError("no dataset files")
    if runs < 1 or batch < 1:
        raise BenchError("runs and batch must be at least 1")
    if mode not in ("insert", "copy"):
        raise BenchError(f"unknown mode {mode!r}")
    if missing_binaries(bindir):
        raise PostgresMissing(f"PostgreSQL 15 is not installed ({bindir} lacks "
                              + ", ".join(missing_binaries(bindir)) + ")")
    for f in files:
        if not os.path.isfile(f):
            raise BenchError(f"{f}: no such file")
    ids = agency_ids(files)

    with _Signals() as signals:
        root = tempfile.mkdtemp(prefix="bench-pg-", dir=work_dir or "/tmp")
        cluster = None
        try:
            os.chmod(root, 0o700)
            cluster = _Cluster(root, bindir, lambda text: say("setup", text))
            sqldir = os.path.join(root, "sql")
            os.mkdir(sqldir)
            scripts, expected = [], {}
            for agency, path in zip(ids, files):
                script = os.path.join(sqldir, f"agency-{agency}.sql")
                expected[agency] = write_script(path, agency, batch, script, mode)
                scripts.append((agency, script))
            rows = sum(expected.values())
            if rows == 0:
                raise BenchError("the dataset files hold no rows")
            if cluster.user is not None:
                for dirpath, _, names in os.walk(root):
                    os.chown(dirpath, cluster.user.pw_uid, cluster.user.pw_gid)
                    for name in names:
                        os.chown(os.path.join(dirpath, name), cluster.user.pw_uid,
                                 cluster.user.pw_gid)
            say("setup", f"{rows:,} rows from {len(files)} files; cluster in {root}"
                + (f", run as user {cluster.user.pw_name}" if cluster.user else ""))
            cluster.create()
            cluster.start()
            cluster.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
            version = cluster.sql("SHOW server_version")
            settings = {}
            for name in SETTINGS:
                settings[name] = cluster.sql(f"SHOW {name}")
            off = [n for n in MUST_BE_ON if settings[n] != "on"]
            if off:
                raise BenchError("not durable: " + ", ".join(f"{n}={settings[n]}" for n in off))
            say("setup", f"PostgreSQL {version}: "
                + ", ".join(f"{k}={v}" for k, v in settings.items()))
            cluster.sql(CREATE_TABLE)
            results, between_results = [], []
            for i in range(1, runs + 1):
                if i > 1:
                    cluster.sql("TRUNCATE bets")
                # Every run starts from the same state: nothing dirty, WAL checkpointed.
                cluster.sql("CHECKPOINT")
                seconds = _one_run(cluster, scripts, expected, RUN_TIMEOUT)
                rate = rows / seconds
                results.append({"rows": rows, "seconds": round(seconds, 6),
                                "rows_per_s": round(rate, 1)})
                say("run", f"run {i}/{runs}: {rows:,} rows, {len(files)} clients, "
                    f"{_how(mode, batch)}: {seconds:.3f} s, {rate:,.0f} rows/s")
                if between is not None:
                    database = f"lottery_round_{i}"
                    cluster.sql(f"CREATE DATABASE {database}", database="postgres")
                    cluster.sql("CHECKPOINT")
                    between_results.append(between(
                        f"host={root} port={PORT} user={SUPERUSER} dbname={database}"))
                    cluster.sql(f"DROP DATABASE {database}", database="postgres")
        finally:
            signals.shield()
            try:
                if cluster is not None:
                    cluster.stop()
            finally:
                shutil.rmtree(root, ignore_errors=True)
                if os.path.exists(root):
                    say("setup", f"could not remove {root} entirely")

    rates = [r["rows_per_s"] for r in results]
    return {"rows": rows, "clients": len(files), "mode": mode,
            "batch": batch if mode == "insert" else None, "runs": results,
            "median_rows_per_s": round(statistics.median(rates), 1),
            "min_rows_per_s": min(rates), "max_rows_per_s": max(rates),
            "postgres_version": version, "settings": settings, "between": between_results}


def _how(mode: str, batch: int) -> str:
    return "one COPY each" if mode == "copy" else f"commit every {batch} rows"


def summary_line(result: dict) -> str:
    n = len(result["runs"])
    how = _how(result.get("mode", "insert"), result["batch"])
    return (f"postgres: {result['clients']} clients, {how}: "
            f"median {result['median_rows_per_s']:,.0f} rows/s "
            f"(min {result['min_rows_per_s']:,.0f}, max {result['max_rows_per_s']:,.0f}) "
            f"over {n} run{'s' if n != 1 else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Baseline for docs/PERFORMANCE.md: PostgreSQL 15 (durable defaults) ingesting "
                    "the agency CSV files, one psql client per agency, a commit every --batch rows.")
    parser.add_argument("--dataset-dir", required=True, help="directory of agency CSV files")
    parser.add_argument("--pattern", default="agency-*.csv",
                        help="glob of the agency files in it (default agency-*.csv)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument("--batch", type=int, default=150,
                        help="rows per INSERT/commit (default 150)")
    parser.add_argument("--mode", choices=("insert", "copy"), default="insert",
                        help="insert: a multi-row INSERT and commit every --batch rows; "
                             "copy: one COPY per agency file (default insert)")
    parser.add_argument("--json", metavar="OUT.json", help="also write the result as JSON here")
    parser.add_argument("--work-dir", help="where the throwaway cluster dir goes (default /tmp)")
    parser.add_argument("--install", action="store_true",
                        help="apt-get install postgresql-15 if it is missing (sudo if not root)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    files = glob.glob(os.path.join(glob.escape(args.dataset_dir), args.pattern))
    if not files:
        print(f"bench_postgres: no {args.pattern} in {args.dataset_dir}", file=sys.stderr)
        return 66

    def progress(kind, text):
        if kind == "run":
            print(text, flush=True)
        else:
            print(f"bench_postgres: {text}", file=sys.stderr, flush=True)

    try:
        if missing_binaries():
            if not args.install:
                print(f"bench_postgres: PostgreSQL 15 is not installed ({BINDIR} lacks "
                      + ", ".join(missing_binaries())
                      + "); rerun with --install to apt-get install postgresql-15. Skipped.",
                      file=sys.stderr)
                return EXIT_SKIP
            install_postgres(lambda text: progress("setup", text))
        result = run_postgres_bench(files, runs=args.runs, batch=args.batch,
                                    work_dir=args.work_dir, progress=progress, mode=args.mode)
    except BenchError as e:
        print(f"bench_postgres: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench_postgres: interrupted; server stopped, temp dir removed", file=sys.stderr)
        return 130
    print(summary_line(result), flush=True)
    if args.json:
        tmp = f"{args.json}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
