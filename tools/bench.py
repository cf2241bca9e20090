#!/usr/bin/env python3
"""The lottery benchmark: `make bench` (docs/PERFORMANCE.md).

Measures, in one run on one machine:
  (a) the limits: the raw bytes of a dataset pushed through one loopback TCP
      connection into a file (lottery-loopback-copy), without and with a final
      fdatasync; and plain socat moving each agency file through its own
      loopback connection into one file, all at once (datasets of at most 16
      agencies), without and with a final fdatasync;
  (b) whole rounds with the real binaries, storage.sync "never" and "always":
      wall time from the first agency start to the last agency exit, bets/s,
      MB/s, the ratios to (a), the CPU (user + sys of the server, its workers
      and the agencies, from rusage) per bet, p50/p99 of a batch ack as the
      agencies and as the server (its /metrics histogram) see it, the draw
      time (last FINISHED to the first winners reply), the group syncs and
      peak RSS of the server parent, of the largest worker and of the largest
      agency;
  (b') the same rounds over mutual TLS 1.3 (--tls-datasets, sync "never"):
      bets/s as a share of the plaintext round's, and the handshake time per
      agency (from the agencies' tls_handshake lines);
  (c) optionally PostgreSQL 15 loading the same 5x1M bets, durable, with one
      client per agency: committing every 150 rows, and with one COPY per
      agency (tools/bench_postgres.py).
Every figure is the median of --runs runs, with min..max printed beside it.
Prints one table, writes the same figures as JSON (build/bench.json by
default), and a verdict (met, MISSED, n/a) per target of the performance
issue (docs/PERFORMANCE.md). Datasets are generated once with
tools/gen_dataset.py and cached under the build dir.

Every process it starts is killed before it returns; it uses 127.0.0.1 only.
"""
import argparse
import collections
import glob
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_certs  # noqa: E402

WINNING_NUMBER = 7574
# name -> (agencies, bets per agency); "shipped" is the committed dataset/.
DATASETS = {
    "shipped": None,
    "5x1000": (5, 1000),
    "5x1M": (5, 1_000_000),
    "200x20k": (200, 20_000),
    "1000x1000": (1000, 1000),
}
# The socat copy (one sender and one receiver per agency file, in parallel)
# is measured for datasets of at most this many agencies.
SOCAT_MAX_FILES = 16
LOG_LINE = re.compile(r"action: (\S+) \| result: (success|fail|in_progress)(?: \| (.*))?$")


def log_entries(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LOG_LINE.search(line.rstrip("\n"))
            if not m:
                continue
            fields = {}
            for part in (m.group(3) or "").split(" | "):
                if ": " in part:
                    k, v = part.split(": ", 1)
                    fields.setdefault(k, v)
            yield m.group(1), m.group(2), fields


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def agency_files(directory):
    files = glob.glob(os.path.join(directory, "agency-*.csv"))
    return sorted(files, key=lambda p: int(re.search(r"agency-(\d+)\.csv$", p).group(1)))


def ensure_dataset(name, data_dir):
    """Returns the directory of dataset `name`, generating it once."""
    if DATASETS[name] is None:
        return os.path.join(ROOT, "dataset")
    agencies, bets = DATASETS[name]
    out = os.path.join(data_dir, name)
    stamp = os.path.join(out, ".complete")
    args = ["--agencies", str(agencies), "--bets", str(bets), "--seed", "11",
            "--winning-number", str(WINNING_NUMBER)]
    if os.path.exists(stamp) and open(stamp).read() == " ".join(args):
        return out
    print(f"bench: generating dataset {name} ({agencies} x {bets:,} bets) in {out}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_dataset.py"), *args,
                    "--output", out], check=True)
    with open(stamp, "w") as f:
        f.write(" ".join(args))
    return out


def expected_winners(files):
    """agency -> sorted winning documents, read straight from the dataset."""
    import csv
    winners = {}
    for path in files:
        a = int(re.search(r"agency-(\d+)\.csv$", path).group(1))
        with open(path, newline="", encoding="utf-8") as f:
            winners[a] = sorted(r[2] for r in csv.reader(f) if len(r) == 5 and r[4].strip() == str(WINNING_NUMBER))
    return winners


def count_lines(path):
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


def kill_group(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class Bench:
    def __init__(self, args):
        self.args = args
        build = args.build_dir if os.path.isabs(args.build_dir) else os.path.join(ROOT, args.build_dir)
        self.build = build
        self.server = os.path.join(build, "src", "lottery-server")
        self.agency = os.path.join(build, "src", "lottery-agency")
        self.copy = os.path.join(build, "src", "lottery-loopback-copy")
        self.work = tempfile.mkdtemp(prefix="lottery-bench-", dir=args.work_dir)
        self.certs = None

    def ensure_certs(self, agencies):
        """A throwaway certificate set for `agencies` agencies (tools/gen_certs.py)."""
        certs = os.path.join(self.work, "certs")
        subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_certs.py"), certs,
                        "--agencies", str(agencies)], check=True, stdout=subprocess.DEVNULL)
        self.certs = certs
        return certs

    def close(self):
        shutil.rmtree(self.work, ignore_errors=True)

    # (a) the limit
    def raw_copy(self, files, sync):
        out = os.path.join(self.work, "copy.out")
        cmd = [self.copy] + (["--sync"] if sync else []) + [out] + files
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            stdout, stderr = proc.stdout.read(), proc.stderr.read()
            cpu = wait_with_usage(proc, timeout=600)
        finally:
            kill_group(proc)
        if proc.returncode != 0:
            raise RuntimeError(f"lottery-loopback-copy exit {proc.returncode}: {stderr.strip()}")
        os.remove(out)
        figures = json.loads(stdout)
        return {"seconds": figures["seconds"], "bytes": figures["bytes"],
                "mb_per_s": figures["bytes"] / 1e6 / figures["seconds"], "cpu_seconds": cpu}

    def socat_copy(self, files, sync):
        """The issue's yardstick: plain socat (its defaults) moving each agency
        file through its own loopback TCP connection, all at once, appended to
        one file like the bets file; with `sync`, one fdatasync of it at the
        end, inside the time. Returns seconds, MB/s and the CPU of all socats."""
        out = os.path.join(self.work, "socat.out")
        open(out, "wb").close()
        receivers, senders = [], []
        try:
            ports = []
            for _ in files:
                port = free_port()
                receivers.append(subprocess.Popen(
                    ["socat", "-u", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr",
                     f"OPEN:{out},wronly,append"], stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True))
                ports.append(port)
            deadline = time.monotonic() + 30
            while not set(ports) <= listening_ports():
                if time.monotonic() > deadline or any(r.poll() is not None for r in receivers):
                    raise RuntimeError("socat did not listen")
                time.sleep(0.005)
            start = time.monotonic()
            for path, port in zip(files, ports):
                senders.append(subprocess.Popen(
                    ["socat", "-u", f"OPEN:{path},rdonly", f"TCP:127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True))
            cpu = reap_all(receivers + senders)
            for p in receivers + senders:
                if p.returncode != 0:
                    raise RuntimeError(f"socat exit {p.returncode}")
            if sync:
                fd = os.open(out, os.O_WRONLY)
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
            seconds = time.monotonic() - start
            size = os.path.getsize(out)
        finally:
            for p in receivers + senders:
                kill_group(p)
            os.remove(out)
        expected = sum(os.path.getsize(p) for p in files)
        if size != expected:
            raise RuntimeError(f"socat copied {size} bytes of {expected}")
        return {"seconds": seconds, "bytes": size, "mb_per_s": size / 1e6 / seconds,
                "cpu_seconds": cpu}

    def keep_logs(self, run_dir):
        """Copies a failed round's logs out of the scratch space (which close()
        removes) to BUILD/bench-failed/<run>; returns where they are."""
        kept = os.path.join(self.build, "bench-failed", os.path.basename(run_dir))
        os.makedirs(kept, exist_ok=True)
        for name in os.listdir(run_dir):
            if name.endswith((".log", ".winners")):
                shutil.copy2(os.path.join(run_dir, name), kept)
        return kept

    # (b) one round
    def round(self, files, sync, winners, tls=False, dsn=None):
        """One round; with `dsn`, on the postgresql backend in that database."""
        run_dir = tempfile.mkdtemp(prefix="round-", dir=self.work)
        try:
            return self._round(run_dir, files, sync, winners, tls, dsn)
        except RuntimeError as e:
            kept = self.keep_logs(run_dir)
            raise RuntimeError(f"{e}\nbench: the round's logs (server.log, agency-N.log) are "
                               f"kept in {kept}") from None
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _round(self, run_dir, files, sync, winners, tls, dsn=None):
        bets_path = os.path.join(run_dir, "bets.csv")
        backend = ["--storage-backend", "postgresql", "--storage-dsn", dsn] if dsn else []
        if tls:
            c = self.ensure_certs(len(files))
            server_tls = gen_certs.server_flags(c)
            agency_tls = gen_certs.agency_flags(c, server_name="127.0.0.1")
        else:
            server_tls = agency_tls = ["--tls-mode", "off"]
        port = free_port()
        metrics_port = free_port()
        server_log = os.path.join(run_dir, "server.log")
        agencies = len(files)
        # A warm page cache for the inputs, as for the raw copy.
        for path in files:
            with open(path, "rb") as f:
                while f.read(1 << 20):
                    pass
        env = dict(os.environ)
        with open(server_log, "w") as log:
            server = subprocess.Popen(
                [self.server, "--config", os.path.join(ROOT, "conf", "server.toml"),
                 "--address", "127.0.0.1", "--port", str(port), "--agencies", str(agencies),
                 "--storage", bets_path, "--storage-sync", sync, "--log-level", "INFO",
                 "--metrics-address", f"127.0.0.1:{metrics_port}", *server_tls, *backend],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True, env=env)
        procs = {}
        try:
            deadline = time.monotonic() + 30
            while "action: ready | result: success" not in open(server_log).read():
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.01)
            agency_rss = 0
            logs = {}
            start = time.monotonic()
            for path in files:
                a = int(re.search(r"agency-(\d+)\.csv$", path).group(1))
                out = open(os.path.join(run_dir, f"agency-{a}.winners"), "w")
                err = open(os.path.join(run_dir, f"agency-{a}.log"), "w")
                cmd = [self.agency, "--config", os.path.join(ROOT, "conf", "client.toml"),
                       "--id", str(a), "--server", f"127.0.0.1:{port}", "--dataset", path,
                       "--batch", str(self.args.batch), "--log-level", "INFO", *agency_tls]
                if self.args.window:
                    cmd += ["--window", str(self.args.window)]
                p = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
                out.close()
                err.close()
                procs[p.pid] = (a, p)
                logs[a] = err.name
            agency_cpu = reap_all([p for _, p in procs.values()])
            failed = [(a, p.returncode) for a, p in procs.values() if p.returncode != 0]
            procs.clear()
            wall = time.monotonic() - start
            if failed:
                raise RuntimeError(f"agencies failed (agency, exit): {failed}")
            server_ack = scrape_ack_histogram(metrics_port)
            server.send_signal(signal.SIGTERM)
            server_cpu = wait_with_usage(server, timeout=60)
            if server.returncode != 0:
                raise RuntimeError(f"server exit {server.returncode}")
            # Each agency got exactly its winners.
            for path in files:
                a = int(re.search(r"agency-(\d+)\.csv$", path).group(1))
                got = sorted(open(os.path.join(run_dir, f"agency-{a}.winners")).read().split())
                if got != winners[a]:
                    raise RuntimeError(f"agency {a}: winners {got} != expected {winners[a]}")
            p50s, p99s, handshakes = [], [], []
            for a, path in logs.items():
                for action, result, fields in log_entries(path):
                    if action == "tls_handshake" and result == "success":
                        handshakes.append(float(fields["handshake_ms"]))
                    if action == "batches_summary":
                        p50s.append(int(fields["ack_p50_us"]))
                        p99s.append(int(fields["ack_p99_us"]))
                    if action == "resource_usage":
                        agency_rss = max(agency_rss, int(fields["peak_rss_kib"]))
            draw_ms = []
            parent_rss = worker_rss = None
            fdatasyncs = None
            for action, result, fields in log_entries(server_log):
                if action == "storage_sync":
                    fdatasyncs = int(fields["fdatasync_calls"])
                if action == "winners_sent" and "draw_latency_ms" in fields:
                    draw_ms.append(float(fields["draw_latency_ms"]))
                if action == "resource_usage":
                    parent_rss = int(fields["parent_peak_rss_kib"])
                    worker_rss = int(fields["worker_peak_rss_kib"])
            input_bytes = sum(os.path.getsize(p) for p in files)
            if dsn:
                # The database holds them (the winners were checked above).
                size, bets = 0, sum(count_lines(p) for p in files)
            else:
                size, bets = os.path.getsize(bets_path), count_lines(bets_path)
            return {
                "seconds": wall, "bets": bets, "bets_per_s": bets / wall,
                "cpu_seconds": server_cpu + agency_cpu,
                "server_cpu_seconds": server_cpu, "agency_cpu_seconds": agency_cpu,
                "cpu_ns_per_bet": (server_cpu + agency_cpu) * 1e9 / bets if bets else None,
                "mb_per_s": input_bytes / 1e6 / wall, "stored_bytes": size,
                "ack_p50_us": statistics.median(p50s) if p50s else None,
                "ack_p99_us": max(p99s) if p99s else None,
                "ack_p99_median_us": statistics.median(p99s) if p99s else None,
                "server_ack_p99_us": histogram_quantile(server_ack, 0.99),
                "server_ack_max_bound_us": histogram_quantile(server_ack, 1.0),
                "draw_ms": min(draw_ms) if draw_ms else None,
                "fdatasync_rounds": fdatasyncs,
                "parent_rss_kib": parent_rss, "worker_rss_kib": worker_rss,
                "agency_rss_kib": agency_rss,
                "handshake_ms": statistics.median(handshakes) if handshakes else None,
            }
        finally:
            for _, p in procs.values():
                kill_group(p)
            kill_group(server)


def run_postgres(args, bench, report, data_dir):
    """(c) PostgreSQL's own loads of 5x1M (commit every 150 rows; one COPY per
    agency), each COPY run followed by a round on the postgresql backend in
    the same cluster; and 1000x1000 the same way."""
    import bench_postgres
    try:
        if bench_postgres.missing_binaries():
            bench_postgres.install_postgres(log=lambda m: print(f"bench: {m}", flush=True))
        if "5x1M" in report["datasets"]:
            files = agency_files(ensure_dataset("5x1M", data_dir))
            report["postgres"] = bench_postgres.run_postgres_bench(files, runs=args.runs,
                                                                   work_dir=args.work_dir)
            winners = expected_winners(files)
            report["postgres_copy"] = bench_postgres.run_postgres_bench(
                files, runs=args.runs, work_dir=args.work_dir, mode="copy",
                between=lambda dsn: pg_round(bench, files, winners, dsn, "5x1M"))
        if "1000x1000" in report["datasets"]:
            many = agency_files(ensure_dataset("1000x1000", data_dir))
            many_winners = expected_winners(many)
            report["postgres_copy_1000"] = bench_postgres.run_postgres_bench(
                many, runs=args.runs, work_dir=args.work_dir, mode="copy",
                between=lambda dsn: pg_round(bench, many, many_winners, dsn, "1000x1000"))
    except bench_postgres.BenchError as e:
        if args.postgres == "yes":
            raise
        print(f"bench: PostgreSQL skipped: {e}", flush=True)


def pg_round(bench, files, winners, dsn, name):
    """A round on the postgresql backend (sync has no meaning there)."""
    r = bench.round(files, "always", winners, dsn=dsn)
    print(f"bench: {name} postgresql round: {r['seconds']:.3f} s, {r['bets_per_s']:,.0f} bets/s, "
          f"ack p99 max {ms(r['ack_p99_us'])} (server {ms(r['server_ack_p99_us'])}, median agency "
          f"{ms(r['ack_p99_median_us'])}), draw {r['draw_ms']} ms", flush=True)
    return r


def listening_ports():
    """TCP ports in LISTEN state on 127.0.0.1 (from /proc/net/tcp)."""
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            address, state = fields[1], fields[3]
            if state == "0A" and address.startswith("0100007F:"):
                ports.add(int(address.split(":")[1], 16))
    return ports


def scrape_ack_histogram(port):
    """The server's own batch-ack latency histogram (docs/METRICS.md), as
    [(upper bound in us, cumulative count)], from its /metrics endpoint."""
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    buckets = []
    for m in re.finditer(r'^lottery_batch_ack_duration_seconds_bucket\{le="([^"]+)"\} (\d+)$',
                         text, re.M):
        bound = float("inf") if m.group(1) == "+Inf" else float(m.group(1)) * 1e6
        buckets.append((bound, int(m.group(2))))
    return buckets


def histogram_quantile(buckets, q):
    """The upper bound of the bucket holding quantile q (1.0: the largest
    sample's bucket); None without samples."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    for bound, cumulative in buckets:
        if cumulative >= rank:
            return bound
    return buckets[-1][0]


def reap_all(procs):
    """Waits for every Popen in `procs` (setting its returncode) and returns
    their user + sys CPU seconds, from wait4(). Once one exits non-zero the
    others are killed: the agencies still waiting would wait for a draw that
    cannot come."""
    pending = {p.pid: p for p in procs}
    cpu = 0.0
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        p = pending.pop(pid, None)
        if p is None:
            continue
        p.returncode = os.waitstatus_to_exitcode(status)
        cpu += usage.ru_utime + usage.ru_stime
        if p.returncode != 0:
            for other in pending.values():
                try:
                    os.killpg(other.pid, signal.SIGKILL)  # reaped by this loop
                except ProcessLookupError:
                    pass
    return cpu


def wait_with_usage(proc, timeout):
    """Waits for `proc` and returns its user + sys CPU seconds, its reaped
    children (the server's workers) included: wait4() reports the child's
    RUSAGE_SELF plus its RUSAGE_CHILDREN."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage.ru_utime + usage.ru_stime
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not stop within 60 s of SIGTERM")
        time.sleep(0.01)


def summarize(samples):
    """median and spread of every numeric figure of a list of dicts."""
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples if s.get(key) is not None]
        if not values or not isinstance(values[0], (int, float)):
            continue
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return out


def fmt(fig, key, scale=1.0, digits=0):
    if key not in fig:
        return "-"
    f = fig[key]
    m, lo, hi = f["median"] * scale, f["min"] * scale, f["max"] * scale
    return f"{m:,.{digits}f} ({lo:,.{digits}f}..{hi:,.{digits}f})"


def ratio(fig, limit):
    """A round's MB/s over a copy's median MB/s: median, min and max."""
    m = limit["mb_per_s"]["median"]
    return {k: fig["mb_per_s"][k] / m for k in ("median", "min", "max")}


def ms(us):
    return "-" if us is None else f"{us / 1000:,.1f} ms"


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def choice_list(choices):
    """An argparse type: a comma-separated list of names from `choices`."""
    def parse(text):
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if not names or unknown:
            raise argparse.ArgumentTypeError(
                f"{', '.join(unknown) or 'nothing'} is not one of {', '.join(choices)}")
        return names
    return parse


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--data-dir", help="dataset cache (default BUILD/bench-data)")
    parser.add_argument("--work-dir", help="scratch space for bets files (default /tmp)")
    parser.add_argument("--json", help="where the JSON goes (default BUILD/bench.json)")
    parser.add_argument("--runs", type=positive_int, default=3)
    parser.add_argument("--datasets", type=choice_list(DATASETS),
                        default="shipped,5x1000,5x1M,200x20k,1000x1000",
                        help=f"comma-separated, of {', '.join(DATASETS)}")
    parser.add_argument("--syncs", type=choice_list(("never", "always")), default="never,always",
                        help="comma-separated, of never, always")
    parser.add_argument("--tls-datasets", type=choice_list(DATASETS), default="5x1M,200x20k,1000x1000",
                        help="datasets also played over mutual TLS (sync never), comma-separated")
    parser.add_argument("--batch", type=int, default=8192, help="batch.max_amount of the agencies")
    parser.add_argument("--window", type=int, default=0, help="batch.window (0: the config's)")
    parser.add_argument("--postgres", choices=["auto", "yes", "no"], default="auto",
                        help="run the PostgreSQL baseline on 5x1M (auto and yes install "
                             "postgresql-15 when missing; auto goes on without it if that fails)")
    args = parser.parse_args()

    bench = Bench(args)
    data_dir = args.data_dir or os.path.join(bench.build, "bench-data")
    os.makedirs(data_dir, exist_ok=True)
    json_path = args.json or os.path.join(bench.build, "bench.json")
    report = {"machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                          "python": platform.python_version()},
              "runs": args.runs, "batch_max_amount": args.batch, "window": args.window or None,
              "datasets": {}}
    try:
        for name in args.datasets:
            directory = ensure_dataset(name, data_dir)
            files = agency_files(directory)
            winners = expected_winners(files)
            entry = {"agencies": len(files), "bets": sum(count_lines(p) for p in files),
                     "input_bytes": sum(os.path.getsize(p) for p in files)}
            def with_cpu_per_bet(run, bets=entry["bets"]):
                run["cpu_ns_per_bet"] = run["cpu_seconds"] * 1e9 / bets if bets else None
                return run

            for sync in (False, True):
                key = "raw_copy_sync" if sync else "raw_copy"
                entry[key] = summarize([with_cpu_per_bet(bench.raw_copy(files, sync))
                                        for _ in range(args.runs)])
            if len(files) <= SOCAT_MAX_FILES:
                if shutil.which("socat"):
                    for sync in (False, True):
                        key = "socat_copy_sync" if sync else "socat_copy"
                        entry[key] = summarize([with_cpu_per_bet(bench.socat_copy(files, sync))
                                                for _ in range(args.runs)])
                else:
                    print("bench: socat is not installed (make deps installs it): "
                          "no socat figures", flush=True)
            # The TLS rounds alternate with the plaintext `never` rounds they
            # are a share of, so that both see the same moments of a shared
            # machine (run back to back, a slower minute for one of them
            # moved the share by 10 points).
            tls_samples = []

            def tls_round(i):
                r = bench.round(files, "never", winners, tls=True)
                print(f"bench: {name} sync=never TLS run {i + 1}: {r['seconds']:.3f} s, "
                      f"{r['bets_per_s']:,.0f} bets/s, handshake {r['handshake_ms']:.1f} ms",
                      flush=True)
                tls_samples.append(r)

            for sync in args.syncs:
                samples = []
                for i in range(args.runs):
                    r = bench.round(files, sync, winners)
                    print(f"bench: {name} sync={sync} run {i + 1}: {r['seconds']:.3f} s, "
                          f"{r['bets_per_s']:,.0f} bets/s, {r['mb_per_s']:.1f} MB/s, "
                          f"CPU {r['cpu_ns_per_bet']:.0f} ns/bet (server+workers "
                          f"{r['server_cpu_seconds']:.2f} s, agencies {r['agency_cpu_seconds']:.2f} s), "
                          f"ack p99 max {ms(r['ack_p99_us'])} (server {ms(r['server_ack_p99_us'])}), "
                          f"draw {r['draw_ms'] if r['draw_ms'] is not None else '-'} ms"
                          + (f", {r['fdatasync_rounds']} group syncs" if r['fdatasync_rounds'] else ""),
                          flush=True)
                    samples.append(r)
                    if sync == "never" and name in args.tls_datasets:
                        tls_round(i)
                fig = summarize(samples)
                suffix = "_sync" if sync == "always" else ""
                fig["ratio_to_raw"] = ratio(fig, entry["raw_copy" + suffix])
                if "socat_copy" + suffix in entry:
                    fig["ratio_to_socat"] = ratio(fig, entry["socat_copy" + suffix])
                entry[f"round_{sync}"] = fig
            if name in args.tls_datasets:
                if not tls_samples:  # no plaintext `never` rounds to alternate with
                    for i in range(args.runs):
                        tls_round(i)
                fig = summarize(tls_samples)
                fig["ratio_to_raw"] = ratio(fig, entry["raw_copy"])
                if "round_never" in entry:
                    plain = entry["round_never"]["bets_per_s"]["median"]
                    fig["share_of_plaintext"] = fig["bets_per_s"]["median"] / plain
                entry["round_never_tls"] = fig
            report["datasets"][name] = entry
        if args.postgres != "no":
            run_postgres(args, bench, report, data_dir)
    finally:
        bench.close()

    print_table(report)
    report["targets"] = check_targets(report)
    for t in report["targets"]:
        print(f"target {'met   ' if t['met'] else 'MISSED' if t['met'] is False else 'n/a   '} "
              f"{t['name']}: {t['detail']}")
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nbench: figures written to {json_path}")
    svg_path = os.path.join(os.path.dirname(os.path.abspath(json_path)), "bench.svg")
    # A process of its own: it may need Debian's python3 for matplotlib.
    plot = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                        "bench_plot.py"), json_path,
                           "--output", svg_path], capture_output=True, text=True)
    print(f"bench: {(plot.stdout + plot.stderr).strip()}")
    return 0


def print_table(report):
    print()
    print(f"medians of {report['runs']} runs, (min..max) beside; MB = 10^6 bytes of agency input; "
          "x copy/x socat: MB/s over the loopback copy's / socat's (+fdatasync for sync=always)")
    header = f"{'dataset':<9} {'what':<16} {'seconds':>24} {'bets/s':>30} {'MB/s':>24} " \
             f"{'x copy':>6} {'x socat':>7} {'CPU ns/bet':>10} {'ack p50/p99 us':>15} " \
             f"{'draw ms':>8} {'RSS KiB parent/worker/agency':>29}"
    print(header)
    print("-" * len(header))
    for name, e in report["datasets"].items():
        for key, label in (("raw_copy", "loopback copy"), ("raw_copy_sync", "loopback+sync"),
                           ("socat_copy", "socat copy"), ("socat_copy_sync", "socat+sync")):
            f = e.get(key)
            if not f:
                continue
            cpu = f"{f['cpu_ns_per_bet']['median']:,.0f}" if "cpu_ns_per_bet" in f else "-"
            print(f"{name:<9} {label:<16} {fmt(f, 'seconds', digits=3):>24} {'':>30} "
                  f"{fmt(f, 'mb_per_s', digits=1):>24} {'':>6} {'':>7} {cpu:>10}")
        for sync in ("never", "always", "never_tls"):
            f = e.get(f"round_{sync}")
            if not f:
                continue
            ack = f"{f['ack_p50_us']['median']:,.0f}/{f['ack_p99_us']['median']:,.0f}" if "ack_p50_us" in f else "-"
            draw = f"{f['draw_ms']['median']:.0f}" if "draw_ms" in f else "-"
            rss = "/".join(f"{f[k]['median']:,.0f}" if k in f else "-"
                           for k in ("parent_rss_kib", "worker_rss_kib", "agency_rss_kib"))
            socat = f"{f['ratio_to_socat']['median']:.2f}" if "ratio_to_socat" in f else "-"
            cpu = f"{f['cpu_ns_per_bet']['median']:,.0f}" if "cpu_ns_per_bet" in f else "-"
            label = "round never+TLS" if sync == "never_tls" else "round sync=" + sync
            print(f"{name:<9} {label:<16} {fmt(f, 'seconds', digits=3):>24} "
                  f"{fmt(f, 'bets_per_s'):>30} {fmt(f, 'mb_per_s', digits=1):>24} "
                  f"{f['ratio_to_raw']['median']:>6.2f} {socat:>7} {cpu:>10} {ack:>15} {draw:>8} {rss:>29}")
            if sync == "never_tls":
                share = f.get("share_of_plaintext")
                hs = f"{f['handshake_ms']['median']:.1f} ms" if "handshake_ms" in f else "-"
                print(f"{'':<9} {'':<16} TLS: {share:.0%} of the plaintext round's bets/s, "
                      f"handshake per agency {hs}" if share is not None else
                      f"{'':<9} {'':<16} TLS: handshake per agency {hs}")
    for key, how in (("postgres", "commit/150 rows"), ("postgres_copy", "one COPY each")):
        pg = report.get(key)
        if pg:
            print(f"postgres  {pg['clients']} clients, {how}: median {pg['median_rows_per_s']:,.0f} "
                  f"rows/s ({pg['min_rows_per_s']:,.0f}..{pg['max_rows_per_s']:,.0f})")
    print()


def check_targets(report):
    """The performance issue's seven targets, then the earlier ones that still
    hold (memory). met is True, False, or None when a figure is missing."""
    d = report["datasets"]
    targets = []

    def add(name, met, detail):
        targets.append({"name": name, "met": met, "detail": detail})

    def missing(name, what):
        add(name, None, f"not measured ({what})")

    big = d.get("5x1M", {})
    never, always = big.get("round_never", {}), big.get("round_always", {})

    name = "1. 5x1M sync=never: round MB/s >= socat copy MB/s"
    if "ratio_to_socat" in never:
        r = never["ratio_to_socat"]["median"]
        add(name, r >= 1.0, f"{r:.2f} of socat ({never['mb_per_s']['median']:.1f} vs "
            f"{big['socat_copy']['mb_per_s']['median']:.1f} MB/s); loopback copy "
            f"{big['raw_copy']['mb_per_s']['median']:.1f} MB/s ({never['ratio_to_raw']['median']:.2f})")
    else:
        missing(name, "needs --datasets 5x1M, --syncs never and socat")

    name = "2. 5x1M sync=always: round MB/s >= 0.5 x socat + one fdatasync"
    if "ratio_to_socat" in always:
        r = always["ratio_to_socat"]["median"]
        add(name, r >= 0.5, f"{r:.2f} of socat+sync ({always['mb_per_s']['median']:.1f} vs "
            f"{big['socat_copy_sync']['mb_per_s']['median']:.1f} MB/s)")
    else:
        missing(name, "needs --datasets 5x1M, --syncs always and socat")

    name = "3. 5x1M sync=always: bets/s >= 3 x PostgreSQL one COPY per agency"
    pg = report.get("postgres_copy")
    if pg and "bets_per_s" in always:
        ours = always["bets_per_s"]["median"]
        r = ours / pg["median_rows_per_s"]
        add(name, r >= 3, f"{r:.2f}x ({ours:,.0f} vs {pg['median_rows_per_s']:,.0f} rows/s)")
    else:
        missing(name, "needs 5x1M sync=always and --postgres")

    name = "4. 5x1M sync=never: CPU (server, workers, agencies) <= 150 ns per bet"
    if "cpu_ns_per_bet" in never:
        c = never["cpu_ns_per_bet"]
        # The yardsticks' CPU for the same bytes, same run: what moving them
        # costs with no checking at all.
        bets = never.get("bets", {}).get("median")
        beside = []
        for key, label in (("socat_copy", "socat copy"), ("raw_copy", "loopback copy")):
            cpu = big.get(key, {}).get("cpu_seconds", {}).get("median")
            if cpu is not None and bets:
                beside.append(f"{label} {cpu * 1e9 / bets:.0f}")
        add(name, c["median"] <= 150, f"{c['median']:.0f} ns/bet ({c['min']:.0f}..{c['max']:.0f}); "
            f"server+workers {never['server_cpu_seconds']['median']:.2f} s, agencies "
            f"{never['agency_cpu_seconds']['median']:.2f} s"
            + (f"; same bytes, no checks: {', '.join(beside)} ns/bet" if beside else ""))
    else:
        missing(name, "needs 5x1M sync=never")

    name = "5. draw latency <= 20 ms with 5M bets stored (worst run)"
    draws = [big[k]["draw_ms"]["max"] for k in ("round_never", "round_always") if "draw_ms" in big.get(k, {})]
    if draws:
        add(name, max(draws) <= 20, f"{max(draws):.1f} ms")
    else:
        missing(name, "needs 5x1M")

    name = "6. 1000x1000 sync=always: winners right, max agency ack p99 <= 1 s"
    many = d.get("1000x1000", {}).get("round_always", {})
    if "ack_p99_us" in many:
        worst = many["ack_p99_us"]["max"]
        server = many.get("server_ack_p99_us", {}).get("max")
        add(name, worst <= 1e6, f"worst run {ms(worst)} (median of agencies' p99 "
            f"{ms(many['ack_p99_median_us']['median'])}; server-side p99 <= {ms(server)}); "
            f"worker peak RSS {many['worker_rss_kib']['max']:,.0f} KiB")
    else:
        missing(name, "needs --datasets 1000x1000 --syncs always")

    name = "7. 5x1M over TLS >= 70% of the plaintext round's bets/s"
    t = big.get("round_never_tls", {})
    if "share_of_plaintext" in t:
        share = t["share_of_plaintext"]
        add(name, share >= 0.7, f"{share:.0%}, handshake {t['handshake_ms']['median']:.1f} ms"
            if "handshake_ms" in t else f"{share:.0%}")
    else:
        missing(name, "needs 5x1M sync=never in --tls-datasets")

    name = "8. 1000x1000 over mutual TLS, all started at once: winners right, max agency ack p99 <= 1 s"
    many_tls = d.get("1000x1000", {}).get("round_never_tls", {})
    if "ack_p99_us" in many_tls:
        worst = many_tls["ack_p99_us"]["max"]
        add(name, worst <= 1e6, f"worst run {ms(worst)} (median of agencies' p99 "
            f"{ms(many_tls['ack_p99_median_us']['median'])}); handshake "
            f"{many_tls['handshake_ms']['median']:.1f} ms" if "handshake_ms" in many_tls
            else f"worst run {ms(worst)}")
    else:
        missing(name, "needs 1000x1000 in --datasets and --tls-datasets")

    name = "9. 5x1M on the postgresql backend: bets/s >= 0.8 x PostgreSQL one COPY per agency"
    copy = report.get("postgres_copy") or {}
    rounds = copy.get("between") or []
    if rounds:
        ours = statistics.median(r["bets_per_s"] for r in rounds)
        ratio_pg = ours / copy["median_rows_per_s"]
        add(name, ratio_pg >= 0.8, f"{ratio_pg:.2f} ({ours:,.0f} vs {copy['median_rows_per_s']:,.0f} "
            "rows/s, alternated in one cluster)")
    else:
        missing(name, "needs 5x1M and --postgres")

    name = "10. 1000x1000 on the postgresql backend: winners right, max agency ack p99 <= 1 s"
    rounds = (report.get("postgres_copy_1000") or {}).get("between") or []
    if rounds:
        worst = max(r["ack_p99_us"] for r in rounds)
        add(name, worst <= 1e6, f"worst run {ms(worst)} (median of agencies' p99 "
            f"{ms(statistics.median(r['ack_p99_median_us'] for r in rounds))})")
    else:
        missing(name, "needs 1000x1000 and --postgres")

    small = d.get("5x1000", {})
    for sync in ("never", "always"):
        s, b = small.get(f"round_{sync}", {}), big.get(f"round_{sync}", {})
        if "agency_rss_kib" in s and "agency_rss_kib" in b:
            grow = b["agency_rss_kib"]["median"] - s["agency_rss_kib"]["median"]
            add(f"agency RSS 1M bets within 2 MiB of 1,000 (sync={sync})", grow <= 2048,
                f"{grow:+,.0f} KiB")
        if "worker_rss_kib" in s and "worker_rss_kib" in b:
            grow = b["worker_rss_kib"]["median"] - s["worker_rss_kib"]["median"]
            add(f"worker RSS flat in batches (sync={sync}; 1M vs 1,000 bets per agency)",
                grow <= 2048, f"{grow:+,.0f} KiB")
    return targets


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        sys.exit(1)
