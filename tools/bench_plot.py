#!/usr/bin/env python3
"""Draws the figures of a benchmark run (build/bench.json, written by
tools/bench.py) as one SVG: `make bench` calls it after the run.

    python3 tools/bench_plot.py [BENCH_JSON] [--output SVG]

Left: bets per second of each dataset and mode, medians with the min..max
range as error bars, against the limits of a plain copy of the same bytes
(loopback TCP into a file, without and with fdatasync, in bets per second of
that dataset) and PostgreSQL's ingest of the same rows when the run had it.
Right: the agencies' batch ack latency, p50 and p99 (log scale).

Needs matplotlib (Debian: python3-matplotlib; make bench installs it).
Exit codes: 0 written, 1 matplotlib or the JSON missing, 2 bad arguments.
"""
import argparse
import json
import os
import sys

MODES = (("round_never", "sync never"), ("round_always", "sync always"),
         ("round_never_tls", "never + TLS"))


def bars(report):
    """[(dataset, mode label, figure dict)] in the order drawn."""
    out = []
    for name, entry in report["datasets"].items():
        for key, label in MODES:
            if key in entry:
                out.append((name, label, entry[key], entry))
    return out


def draw(report, output):
    import matplotlib
    matplotlib.use("Agg")  # no display: files only
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    matplotlib.rcParams["svg.hashsalt"] = "lottery"  # the same figures give the same file
    import matplotlib.pyplot as plt

    items = bars(report)
    if not items:
        raise ValueError("the report has no round figures")
    fig, (rate_ax, ack_ax) = plt.subplots(1, 2, figsize=(15, 6))
    labels = [f"{name}\n{mode}" for name, mode, _, _ in items]
    xs = range(len(items))
    medians = [f["bets_per_s"]["median"] for _, _, f, _ in items]
    low = [f["bets_per_s"]["median"] - f["bets_per_s"]["min"] for _, _, f, _ in items]
    high = [f["bets_per_s"]["max"] - f["bets_per_s"]["median"] for _, _, f, _ in items]
    colours = {"sync never": "#4c72b0", "sync always": "#dd8452", "never + TLS": "#55a868"}
    rate_ax.bar(xs, medians, yerr=[low, high], capsize=3,
                color=[colours[mode] for _, mode, _, _ in items])
    # The copy limits, in bets/s of each dataset (its bytes per bet).
    for i, (_, mode, _, entry) in enumerate(items):
        bytes_per_bet = entry["input_bytes"] / entry["bets"]
        key = "raw_copy_sync" if mode == "sync always" else "raw_copy"
        if key in entry:
            limit = entry[key]["mb_per_s"]["median"] * 1e6 / bytes_per_bet
            rate_ax.hlines(limit, i - 0.4, i + 0.4, colors="black", linestyles="dashed",
                           label="copy of the same bytes" + (" + fdatasync" if key.endswith("sync")
                                                              else "") if i < 2 else None)
    pg = report.get("postgres")
    if pg:
        rate_ax.axhline(pg["median_rows_per_s"], color="#8172b3", linestyle="dotted",
                        label=f"PostgreSQL ({pg.get('clients', 5)} clients)")
    # The copy limits are 10-100x the rounds: only a log scale shows both.
    rate_ax.set_yscale("log")
    rate_ax.set_xticks(list(xs), labels, fontsize=8, rotation=45, ha="right")
    rate_ax.set_ylabel("bets per second (median, min..max; log)")
    rate_ax.set_title("Ingest rate")
    handles, names = rate_ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    rate_ax.legend(unique.values(), unique.keys(), fontsize=8, loc="upper right")
    rate_ax.grid(axis="y", alpha=0.3)

    width = 0.38
    p50 = [f.get("ack_p50_us", {}).get("median", 0) / 1000 for _, _, f, _ in items]
    p99 = [f.get("ack_p99_us", {}).get("median", 0) / 1000 for _, _, f, _ in items]
    ack_ax.bar([x - width / 2 for x in xs], p50, width, label="p50", color="#4c72b0")
    ack_ax.bar([x + width / 2 for x in xs], p99, width, label="p99", color="#c44e52")
    ack_ax.set_yscale("log")
    ack_ax.set_xticks(list(xs), labels, fontsize=8, rotation=45, ha="right")
    ack_ax.set_ylabel("batch ack latency, ms (log)")
    ack_ax.set_title("Agencies' ack latency")
    ack_ax.legend(fontsize=8)
    ack_ax.grid(axis="y", alpha=0.3, which="both")

    machine = report.get("machine", {})
    fig.suptitle(f"lottery benchmark: {machine.get('cpus', '?')} CPUs, kernel "
                 f"{machine.get('kernel', '?')}, medians of {report.get('runs', '?')} runs, "
                 f"batch {report.get('batch_max_amount', '?')}", fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output + ".tmp"
    fig.savefig(tmp, format="svg")
    plt.close(fig)
    os.replace(tmp, output)


SYSTEM_PYTHON = "/usr/bin/python3"


def reexec_with_system_python():
    """Debian's python3-matplotlib is importable by Debian's own python3 only;
    a python3 of another installation (pyenv, a venv) hands over to it."""
    if os.environ.get("BENCH_PLOT_REEXEC") or not os.path.exists(SYSTEM_PYTHON):
        return
    if os.path.realpath(sys.executable) == os.path.realpath(SYSTEM_PYTHON):
        return
    env = dict(os.environ, BENCH_PLOT_REEXEC="1")
    os.execve(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__), *sys.argv[1:]], env)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench_plot.py", description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="?", default="build/bench.json",
                        help="the figures (default build/bench.json)")
    parser.add_argument("--output", help="the SVG to write (default: bench.svg beside the JSON)")
    args = parser.parse_args(argv)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.json)), "bench.svg")
    try:
        with open(args.json) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        print(f"bench_plot.py: cannot read {args.json}: {e}", file=sys.stderr)
        return 1
    try:
        draw(report, output)
    except ImportError:
        if argv is None:
            reexec_with_system_python()
        print("bench_plot.py: matplotlib is missing (Debian: apt-get install python3-matplotlib; "
              "make bench installs it)", file=sys.stderr)
        return 1
    except (KeyError, ValueError) as e:
        print(f"bench_plot.py: {args.json} is not a benchmark report: {e}", file=sys.stderr)
        return 1
    print(f"bench_plot.py: wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
