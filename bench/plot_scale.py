#!/usr/bin/env python3
"""bench/plot_scale.py: the plots of bench/compare's scale scenarios S1-S6 (issue #16).

    plot_scale.py SCALE_CSV OUTDIR [S1,S2,...]

Reads the raw figures bench/compare wrote (scenario,point,broker,rep,metric,value; one line per
run and metric) and writes one PNG per scenario into OUTDIR, warren and RabbitMQ on the same
axes: the median of the repetitions, with their range as error bars, one panel per metric.
Axes are logarithmic where the sweep is. Prints the paths written, one a line.
"""

import csv
import statistics
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import EngFormatter, FixedLocator, LogLocator, NullLocator  # noqa: E402

BROKERS = {"warren": ("warren", "tab:blue", "o"), "rabbitmq": ("RabbitMQ 3.10", "tab:orange", "s")}

# scenario -> (file name, title, x label, [(metric, y label, scale, log y)]); RSS figures are kB.
SPECS = {
    "S1": ("S1-queues", "S1: idle durable queues", "durable queues declared", [
        ("rate", "declare rate (queues/s)", 1, True),
        ("perq", "RSS per idle queue (kB)", 1, True),
        ("idlecpu", "idle broker CPU (% of a core)", 1, False),
    ]),
    "S2": ("S2-topic-bindings", "S2: bindings on one topic exchange, 1 producer → 1 consumer, 16 B",
           "bindings (patterns with * and #)", [
        ("routed", "routed msg/s", 1, True),
        ("cpu", "broker CPU per publish (µs)", 1, True),
    ]),
    "S3": ("S3-consumers", "S3: consumers on one queue, prefetch 10", "consumers", [
        ("delivered", "delivered msg/s", 1, True),
        ("fairness", "fairness: max/min per-consumer count", 1, False),
        ("cpu", "broker CPU per delivery (µs)", 1, True),
    ]),
    "S4": ("S4-connections", "S4: idle connections, 2 channels each", "idle connections", [
        ("perconn", "RSS per connection (kB)", 1, False),
        ("rate", "accept rate (connections/s)", 1, True),
    ]),
    "S5": ("S5-message-size", "S5: message size, 1 producer → 1 consumer (solid: transient, dashed: persistent)",
           "message size (bytes)", [
        ("mbs", "MB/s through", 1, True),
        ("peak", "broker peak RSS (MB)", 1 / 1024, True),
        ("cpu", "broker CPU per message (µs)", 1, True),
    ]),
    "S6": ("S6-queue-depth", "S6: persistent 100 B messages in one classic queue, fill then drain",
           "messages in the queue", [
        ("fill", "fill msg/s (confirmed)", 1, True),
        ("drain", "drain msg/s", 1, True),
        ("peak", "peak RSS (MB)", 1 / 1024, True),
    ]),
}

# Horizontal target lines: scenario -> metric -> (value, label).
TARGETS = {"S4": {"perconn": (15, "target at 50k: ≤ 15 kB")}}


def load(path):
    """{scenario: {(point, broker): {metric: [values]}}} and the points not run, with why."""
    data = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    skipped = defaultdict(list)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["metric"] == "na":
                skipped[row["scenario"]].append((row["point"], row["broker"]))
                continue
            try:
                v = float(row["value"])
            except ValueError:
                continue
            data[row["scenario"]][(row["point"], row["broker"])][row["metric"]].append(v)
    return data, skipped


def s2_target(runs):
    """S2's target line: 3× warren's CPU per publish at the fewest bindings."""
    points = sorted((float(p), p) for p, b in runs if b == "warren" and runs[(p, b)].get("cpu"))
    if len(points) < 2:
        return None
    first = points[0][1]
    return (3 * statistics.median(runs[(first, "warren")]["cpu"]),
            f"target: 3× warren's cost at {xlabel_of(float(first), 'S2')}")


def xlabel_of(x, scenario):
    """A swept value as a tick label: 1k, 100k; sizes as 1 KB, 16 MB."""
    if scenario == "S5":
        for unit, div in (("MB", 1 << 20), ("KB", 1 << 10)):
            if x >= div:
                return f"{x / div:g} {unit}"
        return f"{x:g} B"
    for unit, div in (("M", 1e6), ("k", 1e3)):
        if x >= div:
            return f"{x / div:g}{unit}"
    return f"{x:g}"


def series(points):
    """(x, variant) for each point: S5's points are SIZE-MODE."""
    for p in points:
        if "-" in p:
            size, mode = p.split("-", 1)
            yield p, float(size), mode
        else:
            yield p, float(p), ""


def plot(scenario, runs, skipped, outdir):
    name, title, xlabel, metrics = SPECS[scenario]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.2), squeeze=False)
    xs_all = sorted({x for _, x, _ in series({p for p, _ in runs})})
    for ax, (metric, ylabel, scale, logy) in zip(axes[0], metrics):
        drawn = False
        for broker, (label, color, marker) in BROKERS.items():
            lines = defaultdict(list)  # variant -> [(x, median, low, high)]
            for point, x, variant in series(sorted({p for p, b in runs if b == broker})):
                vals = runs[(point, broker)].get(metric)
                if not vals:
                    continue
                vals = [v * scale for v in vals]
                m = statistics.median(vals)
                lines[variant].append((x, m, m - min(vals), max(vals) - m))
            for variant, pts in sorted(lines.items()):
                pts.sort()
                xs, ys, lo, hi = zip(*pts)
                dashed = variant == "persistent"
                ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker=marker,
                            linestyle="--" if dashed else "-",
                            markerfacecolor="white" if dashed else color,
                            capsize=3, label=f"{label} {variant}".strip())
                drawn = True
        target = TARGETS.get(scenario, {}).get(metric)
        if scenario == "S2" and metric == "cpu":
            target = s2_target(runs)
        if target:
            value, tlabel = target
            ax.axhline(value * scale, color="tab:green", linestyle=":", label=tlabel)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(xs_all))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([xlabel_of(x, scenario) for x in xs_all])
        if len(xs_all) == 1:
            ax.set_xlim(xs_all[0] / 3, xs_all[0] * 3)
        if logy and drawn:
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0)))
            ax.yaxis.set_minor_formatter(EngFormatter(sep=""))
        ax.yaxis.set_major_formatter(EngFormatter(sep=""))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
    full = title
    if skipped:
        by_point = defaultdict(set)
        for point, broker in skipped:
            by_point[point].add(BROKERS.get(broker, (broker,))[0])
        full += "\nnot run (fd limit): " + "; ".join(
            f"{xlabel_of(float(p), scenario)} on {' and '.join(sorted(b))}"
            for p, b in sorted(by_point.items(), key=lambda kv: float(kv[0])))
    fig.suptitle(full, fontsize=10)
    fig.tight_layout()
    path = f"{outdir}/{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: plot_scale.py SCALE_CSV OUTDIR [S1,S2,...]")
    csv_path, outdir = sys.argv[1], sys.argv[2]
    wanted = sys.argv[3].split(",") if len(sys.argv) > 3 else list(SPECS)
    data, skipped = load(csv_path)
    for scenario in wanted:
        if scenario in SPECS and data.get(scenario):
            print(plot(scenario, data[scenario], skipped.get(scenario, []), outdir))


if __name__ == "__main__":
    main()
