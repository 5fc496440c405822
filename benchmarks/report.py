"""Turn the harness's results (the dict written to latest.json) into a table and a chart.

``python -m benchmarks.report results/latest.json`` re-renders latest.md and
latest.png from a saved run without measuring anything.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"

#: Bar colours, one per contender, stable across runs.
COLOURS = {
    "ours": "#1f77b4",
    "ours-trio": "#9467bd",
    "ours-gevent": "#17becf",
    "ours-asyncio": "#e377c2",
    "gear": "#ff7f0e",
    "pygearman": "#2ca02c",
    "aiogear": "#d62728",
    "libgearman": "#7f7f7f",
    "gearman-cli": "#bcbd22",
}
#: ours@REV: our binding at an older revision.
OLD_OURS_COLOUR = "#9ecae1"
#: The conc scenario's goal: the trio and gevent bindings' conc jobs/s at least
#: this many times the blocking binding's fg jobs/s (benchmarks/README.md).
CONC_TARGET = 1.5
CONC_GOAL_CONTENDERS = ("ours-trio", "ours-gevent")
#: The Python peers whose versions the first line names, where the run has them.
PEER_DISTRIBUTIONS = ("gear", "pygearman", "aiogear")

PARSER_LABELS = {
    "decode_small_job_assign_uniq": "decode JOB_ASSIGN_UNIQ, 16 B payload",
    "decode_small_client_stream": "decode JOB_CREATED + WORK_COMPLETE, 16 B result",
    "reference_inlined_client_loop": "(reference, not the library: the same stream, hand-inlined)",
    "decode_1mib_work_complete": "decode WORK_COMPLETE, 1 MiB payload",
    "encode_submit_job": "encode SUBMIT_JOB",
}


def number(value: float | None) -> str:
    """Three significant digits, thousands separated; "-" for nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(scenario key, metric field, metric label, higher is better) in table order."""
    rows = []
    for scenario in results["scenarios"]:
        key, kind = scenario["key"], scenario["kind"]
        per = "MiB" if kind == "large" else "job"
        rows.append((key, "throughput", scenario["unit"], True))
        if kind != "drain":
            rows.append((key, "client_cpu", f"client CPU µs/{per}", False))
        if kind != "bg":
            rows.append((key, "worker_cpu", f"worker CPU µs/{per}", False))
    return rows


def _ratio(ours: float | None, other: float | None) -> float | None:
    if ours is None or other is None or other == 0 or math.isnan(ours) or math.isnan(other):
        return None
    return ours / other


def table_data(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One dict per table row: figures per contender and ours' two ratios."""
    contenders = [c for c in results["contenders"] if c["available"]]
    peers = [c["name"] for c in contenders if c["python_peer"]]
    data = []
    for key, field, label, higher_better in _rows(results):
        per = results["summary"].get(key, {})
        figures = {c["name"]: per.get(c["name"], {}).get(field) for c in contenders}
        ours = figures.get("ours")
        peer_figures = {name: figures[name] for name in peers if figures.get(name) is not None}
        best_peer = None
        if peer_figures:
            choose = max if higher_better else min
            best_peer = choose(peer_figures, key=lambda name: peer_figures[name])
        data.append(
            {
                "scenario": key,
                "metric": field,
                "label": label,
                "higher_is_better": higher_better,
                "figures": figures,
                "vs_libgearman": _ratio(ours, figures.get("libgearman")),
                "best_peer": best_peer,
                "vs_best_peer": _ratio(ours, peer_figures.get(best_peer)) if best_peer else None,
            }
        )
    return data


def is_ours(name: str) -> bool:
    """``ours`` (the working tree) or ``ours@REV`` (a git revision of it)."""
    return name == "ours" or name.startswith("ours@")


def colour(name: str) -> str:
    if name.startswith("ours@"):
        return OLD_OURS_COLOUR
    return COLOURS.get(name, "#333333")


def _spread(entry: dict[str, Any], field: str) -> str:
    """The slowest-fastest range of the repetitions, and its width in % of the median."""
    low, high, middle = entry.get(f"{field}_min"), entry.get(f"{field}_max"), entry.get(field)
    if low is None or high is None:
        return "-"
    width = f" ({(high - low) / middle * 100:.1f}%)" if middle else ""
    return f"{number(low)}-{number(high)}{width}"


def _ranges(new: dict[str, Any], old: dict[str, Any], field: str) -> str:
    """Return "apart" when the two contenders' ranges of repetitions do not overlap."""
    bounds: list[float] = []
    for entry in (new, old):
        low, high = entry.get(f"{field}_min"), entry.get(f"{field}_max")
        if low is None or high is None or entry.get("samples", 0) < 2:
            return "-"  # no figure, or one run: no spread to compare
        bounds += [low, high]
    new_low, new_high, old_low, old_high = bounds
    return "apart" if new_high < old_low or old_high < new_low else "overlap"


def _per_round(results: dict[str, Any], key: str, field: str, new: str, old: str) -> str:
    """The range of *new* ÷ *old* over the rounds, each round's two figures paired.

    Both were measured in the same round, one right after the other, so a
    drift of the machine over the run cancels out of each round's ratio.
    """
    rounds: dict[int, dict[str, float]] = {}
    for sample in results.get("samples", []):
        value = sample.get(field)
        if sample["scenario"] == key and sample["rep"] >= 0 and not sample["error"] and value:
            rounds.setdefault(sample["rep"], {})[sample["contender"]] = value
    ratios = [pair[new] / pair[old] for pair in rounds.values() if new in pair and old in pair]
    if not ratios:
        return "-"
    if len(ratios) == 1:
        return number(ratios[0])
    return f"{number(min(ratios))}-{number(max(ratios))}"


def before_after(results: dict[str, Any]) -> list[str]:
    """The section comparing ours with ours@REV (nothing unless both took part).

    For every scenario and metric: each one's median and its run-to-run spread
    (min-max of the repetitions), the ratio of the medians, its range over the
    rounds, and whether the two spreads overlap, so a reader can tell a change
    from noise.
    """
    family = [c for c in results["contenders"] if c["available"] and is_ours(c["name"])]
    if len(family) < 2:
        return []
    new = next((c for c in family if c["name"] == "ours"), family[0])
    olds = [c for c in family if c is not new]
    repeat = results["meta"]["config"]["repeat"]

    def who(contender: dict[str, Any]) -> str:
        revision = contender.get("revision") or "?"
        if contender["name"] == "ours":
            return f"`ours` is the working tree ({revision})"
        return f"`{contender['name']}` is commit {revision[:12]}"

    def short(contender: dict[str, Any]) -> str:
        return "ours (working tree)" if contender["name"] == "ours" else contender["name"]

    lines = [
        "",
        f"Before and after: {'; '.join(who(c) for c in [new, *olds])}. The same "
        "contender script drives each, with the same n, interleaved in the same rounds. "
        f"Figures are medians of {repeat} {'run' if repeat == 1 else 'runs'}; spread: "
        "the slowest and fastest run, and the width of that range in % of the median. "
        f"Ratio: {new['name']} ÷ the other, of the medians (throughput above 1 is faster, "
        "CPU below 1 is cheaper); per round: the lowest and highest ratio of the two "
        'figures of one round, measured back to back. Ranges: "apart" when the two '
        "spreads do not overlap, so the difference exceeds the run-to-run noise of this "
        'run; "overlap" when they do.',
        "",
    ]
    header = ["scenario", "metric", short(new), "spread"]
    for old in olds:
        header += [old["name"], "spread"]
    for old in olds:
        header += [f"{new['name']} ÷ {old['name']}", "per round", "ranges"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | --- | " + " | ".join("---:" for _ in header[2:]) + " |")
    for key, field, label, _higher_better in _rows(results):
        per = results["summary"].get(key, {})
        entries = {c["name"]: per.get(c["name"], {}) for c in family}
        if all(entries[c["name"]].get(field) is None for c in family):
            continue  # e.g. a scenario the revision skips, or failed everywhere
        cells = [key, label]
        for contender in [new, *olds]:
            entry = entries[contender["name"]]
            cells += [number(entry.get(field)), _spread(entry, field)]
        new_entry = entries[new["name"]]
        for old in olds:
            old_entry = entries[old["name"]]
            cells += [
                number(_ratio(new_entry.get(field), old_entry.get(field))),
                _per_round(results, key, field, new["name"], old["name"]),
                _ranges(new_entry, old_entry, field),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def conc_target(results: dict[str, Any]) -> list[str]:
    """A line on the conc goal (CONC_TARGET) of CONC_GOAL_CONTENDERS that have a figure."""
    summary = results["summary"]
    blocking = summary.get("fg", {}).get("ours", {}).get("throughput")
    verdicts = []
    for name in CONC_GOAL_CONTENDERS:
        ratio = _ratio(summary.get("conc", {}).get(name, {}).get("throughput"), blocking)
        if ratio is not None:
            verdict = "met" if ratio >= CONC_TARGET else "not met"
            verdicts.append(f"{name} {ratio:.3f} ({verdict})")  # 1.498 is not 1.50
    if not verdicts:
        return []
    return [
        "",
        f"conc goal: conc jobs/s ÷ ours' fg jobs/s at least {CONC_TARGET:g}: "
        f"{', '.join(verdicts)}.",
    ]


def _first_error(entry: dict[str, Any]) -> str:
    """The first failed run's error, its first line, with how many runs failed."""
    errors = entry.get("errors") or []
    if not errors:
        return ""
    runs = entry.get("samples", 0) + len(errors)
    return f"{len(errors)} of {runs} runs failed: {errors[0].splitlines()[0]}"


def conc_table(results: dict[str, Any]) -> list[str]:
    """The conc figure of every contender that took part, beside ours' fg (this run's).

    The ratio is to the blocking binding's fg jobs/s, one job at a time; a
    contender whose runs failed (wrong results, say) shows the first error.
    """
    per = results["summary"].get("conc", {})
    takers = [c for c in results["contenders"] if c["available"] and c["name"] in per]
    if not takers:
        return []
    fg = results["summary"].get("fg", {}).get("ours")
    rows = [("conc", c, per[c["name"]]) for c in takers]
    if fg:  # ours ran fg, so it is among the contenders
        ours = next(c for c in results["contenders"] if c["name"] == "ours")
        rows.insert(0, ("fg", ours, fg))
    reference = fg.get("throughput") if fg else None
    lines = [
        "",
        "conc beside fg: each contender's conc jobs/s, and that ÷ ours' fg jobs/s (the "
        "blocking binding, one job at a time), from this run.",
        "",
        "| contender | scenario | jobs/s | ÷ ours fg | client CPU µs/job | worker CPU µs/job | "
        "problem |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for scenario, contender, entry in rows:
        cells = [
            contender["label"],
            scenario,
            number(entry.get("throughput")),
            number(_ratio(entry.get("throughput"), reference)),
            number(entry.get("client_cpu")),
            number(entry.get("worker_cpu")),
            _first_error(entry).replace("|", "/"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _load_note(load: dict[str, float] | None) -> str:
    if not load:
        return ""
    return (
        f"; other processes took {load['others_cpu_percent']:.0f}% of a CPU meanwhile "
        f"(steal {load['steal_percent']:.0f}%)"
    )


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    machine = meta["machine"]
    config = meta["config"]
    contenders = [c for c in results["contenders"] if c["available"]]
    names = [c["name"] for c in contenders]
    lines = [
        f"{machine['date']}; {machine['nproc']} CPUs ({machine['cpu']}), Linux "
        f"{machine['kernel']}, Python {machine['python']}, {machine['gearmand']}, "
        f"libgearman {machine['libgearman']}"
        + "".join(f", {name} {machine[name]}" for name in PEER_DISTRIBUTIONS if name in machine)
        + f". `{config['command']}`, {meta['duration_s']:.0f} s"
        + (f", low-latency mode {config['low_latency']}" if "low_latency" in config else "")
        + _load_note(meta.get("load"))
        + ".",
        "",
        f"Each figure is the median of {config['repeat']} "
        f"{'run' if config['repeat'] == 1 else 'runs'}, contenders interleaved. "
        "Throughput: higher is better; CPU: user + system time of that process per job "
        "(per MiB for large), lower is better. Ratios are ours ÷ the other, so above 1 "
        'means more throughput or more CPU than the other. "-": the contender does not '
        "take part, or failed (see latest.json).",
        "",
    ]
    header = [
        "scenario",
        "metric",
        *(c["label"] for c in contenders),
        "ours ÷ libgearman",
        "ours ÷ best Python peer",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| --- | --- | " + " | ".join("---:" for _ in header[2:]) + " |")
    for row in table_data(results):
        cells = [row["scenario"], row["label"]]
        cells += [number(row["figures"].get(name)) for name in names]
        cells.append(number(row["vs_libgearman"]))
        best = row["best_peer"]
        cells.append(f"{number(row['vs_best_peer'])} ({best})" if best else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += conc_target(results)
    lines += conc_table(results)
    lines += before_after(results)

    if config["target_seconds"] > 0:
        sizing = (
            f"sized from probes to about {config['target_seconds']:g} s, at most "
            f"{config['n']} / {config['large_n']}"
        )
    else:
        sizing = "fixed"
    lines += ["", f"Jobs per measurement (n, {sizing}):", ""]
    lines.append("| scenario | " + " | ".join(c["label"] for c in contenders) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in contenders) + " |")
    for scenario in results["scenarios"]:
        per = results["summary"].get(scenario["key"], {})
        cells = [str(per.get(name, {}).get("n") or "-") for name in names]
        lines.append(f"| {scenario['key']} | " + " | ".join(cells) + " |")

    parser = results.get("parser")
    if parser:
        lines += ["", "Core alone (`benchmarks/parser.py`, no sockets, best round):", ""]
        if "error" in parser:
            lines.append(f"parser.py failed: {parser['error']}")
        else:
            lines += ["| figure | packets/s | MB/s |", "| --- | ---: | ---: |"]
            for key, figures in parser.items():
                label = PARSER_LABELS.get(key, key)
                lines.append(
                    f"| {label} | {number(figures.get('packets_per_s'))} | "
                    f"{number(figures.get('mb_per_s'))} |"
                )

    left_out = [c for c in results["contenders"] if not c["available"]]
    partial = [c for c in results["contenders"] if c["available"] and c.get("note")]
    failures = [
        (key, name, len(entry["errors"]), entry["errors"][0])
        for key, per in results["summary"].items()
        for name, entry in per.items()
        if entry["errors"]
    ]
    if left_out or partial or failures:
        lines += ["", "Problems:", ""]
        for contender in left_out:
            reason = contender["reason"].splitlines()[0] if contender["reason"] else ""
            lines.append(f"- {contender['label']} left out: {reason}")
        for contender in partial:
            lines.append(f"- {contender['label']}: {contender['note']}")
        for key, name, count, first in failures:
            lines.append(f"- {name} {key}: {count} failed runs; first: {first.splitlines()[0]}")
    return "\n".join(lines) + "\n"


def document(table: str) -> str:
    """latest.md: the table under a title."""
    return f"# Gearman benchmark: latest results\n\n{table}"


def chart(results: dict[str, Any], path: Path) -> str | None:
    """Write a PNG of bar charts; return why not if matplotlib is missing."""
    try:
        import matplotlib  # noqa: PLC0415 (optional: the bench extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]')"

    contenders = [c for c in results["contenders"] if c["available"]]
    panels: list[tuple[str, str, str]] = [
        (s["key"], "throughput", f"{s['key']} ({s['unit']})") for s in results["scenarios"]
    ]
    both = ("client", "worker")
    sides = {"fg": both, "pipe": both, "conc": both, "bg": ("client",), "drain": ("worker",)}
    for scenario in results["scenarios"]:
        for side in sides.get(scenario["kind"], ()):
            panels.append(
                (scenario["key"], f"{side}_cpu", f"{scenario['key']} {side} CPU (µs/job)")
            )
    columns = 4
    rows = math.ceil(len(panels) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.4 * rows), squeeze=False)
    for axis in axes.flat[len(panels) :]:
        axis.set_visible(False)
    for axis, (key, field, title) in zip(axes.flat, panels, strict=False):
        per = results["summary"].get(key, {})
        shown = [c for c in contenders if per.get(c["name"], {}).get(field) is not None]
        values = [per[c["name"]][field] for c in shown]
        bars = axis.bar(
            range(len(shown)),
            values,
            color=[colour(c["name"]) for c in shown],
        )
        axis.bar_label(bars, labels=[number(v) for v in values], fontsize=8)
        axis.set_xticks(range(len(shown)), [c["name"] for c in shown], rotation=25, fontsize=8)
        axis.set_title(title, fontsize=10)
        axis.margins(y=0.15)
        axis.tick_params(axis="y", labelsize=8)
    machine = results["meta"]["machine"]
    figure.suptitle(
        f"Gearman end-to-end benchmark, medians of {results['meta']['config']['repeat']} runs "
        f"({machine['nproc']} CPUs, Python {machine['python']}, {machine['gearmand']})",
        fontsize=11,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return None


def update_readme(readme: Path, table: str) -> None:
    """Replace the part of *readme* between the results markers with *table*."""
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} section")
    text = text[: start + len(README_START)] + "\n" + table + text[end:]
    readme.write_text(text)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m benchmarks.report results/latest.json", file=sys.stderr)
        return 2
    source = Path(argv[0])
    results = json.loads(source.read_text())
    table = markdown(results)
    (source.parent / "latest.md").write_text(document(table))
    problem = chart(results, source.parent / "latest.png")
    if problem:
        print(f"no chart: {problem}", file=sys.stderr)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
