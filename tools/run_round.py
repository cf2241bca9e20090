#!/usr/bin/env python3
"""Runs one whole lottery round on loopback: `make run`.

Starts lottery-server on a free 127.0.0.1 port with a fresh bets file, runs one
lottery-agency per dataset/agency-<i>.csv, waits for all of them, stops the
server with SIGTERM and prints a table: agency, bets sent, winners. Every
process it starts is stopped before it returns, whatever happens.

The round runs over mutual TLS with throwaway certificates made by
tools/gen_certs.py in the work directory (--plaintext: tls.mode = off).
"""
import argparse
import glob
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import gen_certs  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path: str, pattern: str, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, encoding="utf-8", errors="replace") as f:
            if pattern in f.read():
                return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--dataset", default=os.path.join(ROOT, "dataset"))
    parser.add_argument("--workdir", help="where logs and the bets file go (default: a new temp dir)")
    parser.add_argument("--plaintext", action="store_true", help="run with tls.mode = off")
    args = parser.parse_args()

    build = os.path.join(ROOT, args.build_dir) if not os.path.isabs(args.build_dir) else args.build_dir
    server_bin = os.path.join(build, "src", "lottery-server")
    agency_bin = os.path.join(build, "src", "lottery-agency")
    files = sorted(glob.glob(os.path.join(args.dataset, "agency-*.csv")),
                   key=lambda p: int(re.search(r"agency-(\d+)\.csv$", p).group(1)))
    if not files:
        print(f"run_round: no agency-*.csv in {args.dataset}", file=sys.stderr)
        return 66
    workdir = args.workdir or tempfile.mkdtemp(prefix="lottery-round-")
    os.makedirs(workdir, exist_ok=True)
    bets = os.path.join(workdir, "bets.csv")
    # A fresh round: no bets and no batch journal from an earlier run.
    for stale in (bets, bets + ".journal"):
        if os.path.exists(stale):
            os.remove(stale)
    port = free_port()
    server_log = os.path.join(workdir, "server.log")
    if args.plaintext:
        server_tls = ["--tls-mode", "off"]
        agency_tls = ["--tls-mode", "off"]
    else:
        certs = os.path.join(workdir, "certs")
        if subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_certs.py"), certs,
                           "--agencies", str(len(files))], stdout=subprocess.DEVNULL).returncode:
            print("run_round: could not make the certificates", file=sys.stderr)
            return 1
        server_tls = gen_certs.server_flags(certs)
        # The shipped client.toml expects the name "server"; here it is 127.0.0.1.
        agency_tls = gen_certs.agency_flags(certs, server_name="127.0.0.1")

    procs = []
    try:
        with open(server_log, "w") as log:
            server = subprocess.Popen(
                [server_bin, "--config", os.path.join(ROOT, "conf", "server.toml"),
                 "--address", "127.0.0.1", "--port", str(port),
                 "--agencies", str(len(files)), "--storage", bets, *server_tls],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        procs.append(server)
        if not wait_for(server_log, "action: ready | result: success", server, 15):
            print(open(server_log).read(), file=sys.stderr)
            print("run_round: the server did not start", file=sys.stderr)
            return 1
        agencies = []
        for path in files:
            i = int(re.search(r"agency-(\d+)\.csv$", path).group(1))
            out = open(os.path.join(workdir, f"agency-{i}.winners"), "w")
            err = open(os.path.join(workdir, f"agency-{i}.log"), "w")
            p = subprocess.Popen(
                [agency_bin, "--config", os.path.join(ROOT, "conf", "client.toml"),
                 "--id", str(i), "--server", f"127.0.0.1:{port}", "--dataset", path, *agency_tls],
                stdout=out, stderr=err, start_new_session=True)
            procs.append(p)
            agencies.append((i, p, out, err))
        failed = False
        rows = []
        for i, p, out, err in agencies:
            code = p.wait(timeout=600)
            out.close()
            err.close()
            log_text = open(err.name, encoding="utf-8").read()
            sent = re.search(r"action: apuestas_enviadas \| result: success \| client_id: \d+ \| cantidad: (\d+)", log_text)
            winners = open(out.name, encoding="utf-8").read().split()
            rows.append((i, sent.group(1) if sent else "?", len(winners), code))
            failed |= code != 0
        stop(server)
        print()
        print(f"{'agency':>6}  {'bets sent':>9}  {'winners':>7}")
        for i, sent, winners, code in rows:
            note = "" if code == 0 else f"  (exit {code}: see {workdir}/agency-{i}.log)"
            print(f"{i:>6}  {sent:>9}  {winners:>7}{note}")
        total = sum(int(r[1]) for r in rows if r[1] != "?")
        print(f"{'total':>6}  {total:>9}  {sum(r[2] for r in rows):>7}")
        print(f"\nserver exit code {server.returncode}; logs, winners and bets file in {workdir}")
        return 1 if failed or server.returncode != 0 else 0
    finally:
        for p in procs:
            stop(p)


if __name__ == "__main__":
    sys.exit(main())
