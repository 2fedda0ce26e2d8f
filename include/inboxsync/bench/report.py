"""Figures into words: medians, the printed table, and summaries of py-spy's collapsed stacks."""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

_LINE_NO = re.compile(r":\d+\)$")


def median(values: Iterable[float]) -> float | None:
    """The median, or None for no values."""
    values = list(values)
    return statistics.median(values) if values else None


def collapsed_summary(
    lines: Iterable[str], top: int = 15, within: str | None = None
) -> dict[str, list[tuple[str, float]]]:
    """Where the samples of a collapsed-stack profile (py-spy ``--format raw``) went.

    Each line is ``frame;frame;...;frame COUNT``, outermost frame first. A frame's line number is
    dropped so one function is one entry.

    Args:
        lines: The profile's lines.
        top: How many functions to keep per list.
        within: Only count samples whose stack passes through this function (e.g.
            ``sync_inbox``), from that frame inwards; shares are then of those samples.

    Returns:
        ``inclusive``: functions by the share of samples whose stack contains them (counted once
        per stack); ``self``: by the share of samples in which they were the innermost frame.
        Shares are fractions of all samples, rounded to 4 places; ties go by name.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_LINE_NO.sub(")", f) for f in stack.split(";")]
        if within is not None:
            starts = [i for i, f in enumerate(frames) if f.split(" (", 1)[0] == within]
            if not starts:
                continue
            frames = frames[starts[0] :]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"inclusive": [], "self": [], "samples": []}

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:top]
        return [(name, round(n / total, 4)) for name, n in ranked]

    return {"inclusive": share(inclusive), "self": share(own), "samples": [("all", total)]}


def _fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def _fmt_rate(rate: float | None) -> str:
    return "n/a" if not rate else f"{rate:,.0f} messages/s"


def _fmt_mb(kb: float | None) -> str:
    return "n/a" if kb is None else f"{kb / 1024:,.0f} MB"


def table(results: dict[str, Any]) -> str:
    """The benchmark's figures as a Markdown table (printed, and pasted into the README)."""
    rows: list[tuple[str, str]] = []
    n = results["n"]
    seed = results.get("seed")
    if seed:
        rows.append(
            ("seed: Maildir files written", f"{seed['messages']:,} in {_fmt_s(seed['seconds'])}")
        )
    ceiling = results["ceiling"]
    rows.append(
        (
            "raw ceiling: imaplib FETCH, no parsing",
            f"{_fmt_s(ceiling['median_s'])}, {_fmt_rate(ceiling['median_rate'])} "
            f"(first, cold pass: {_fmt_rate(ceiling['cold_rate'])})",
        )
    )
    if ceiling.get("median_dovecot_cpu_s") is not None:
        rows.append(("  CPU time: Dovecot, ceiling pass", _fmt_s(ceiling["median_dovecot_cpu_s"])))
    floor = results.get("floor")
    if floor and floor.get("median_s"):
        rows.append(
            (
                "warehouse floor: the sync's rows by binary COPY, nothing else",
                f"{_fmt_s(floor['median_s'])}, {_fmt_rate(floor['median_rate'])}",
            )
        )
        rows.append(("  CPU time: PostgreSQL, floor", _fmt_s(floor["median_pg_cpu_s"])))
    full = results["full_sync"]
    rows.append(
        (
            f"full sync of one inbox ({n:,} messages)",
            f"{_fmt_s(full['median_wall_s'])}, {_fmt_rate(full['median_rate'])}",
        )
    )
    python = results.get("python_parse")
    if python and python.get("slower"):
        cpu = full.get("median_cpu_s") or {}
        sync_cpu = ""
        if python.get("median_cpu_s") is not None:  # figures of before the FETCH reader's C
            sync_cpu = (f"; the sync process's {_fmt_s(python['median_cpu_s'])} against "
                        f"{_fmt_s(cpu.get('sync process'))}")  # fmt: skip
        rows.append((
            "  the same sync in pure Python (`INBOXSYNC_PARSE=python INBOXSYNC_FETCH=python`)",
            f"{_fmt_s(python['median_wall_s'])}, {_fmt_rate(python['median_rate'])}: "
            f"{python['slower']:.2f} times the wall; the worker's CPU "
            f"{_fmt_s(python['median_worker_cpu_s'])} against {_fmt_s(cpu.get('parse worker'))}"
            f"{sync_cpu}",
        ))  # fmt: skip
    ratio = results.get("ratio")
    rows.append(("sync / ceiling", "n/a" if ratio is None else f"{ratio:.1%}"))
    if results.get("floor_ratio") is not None:
        rows.append(("sync / warehouse floor", f"{results['floor_ratio']:.1%}"))
    wall = full["median_wall_s"] or 0.0
    # "who: stage": the sync thread fetches, a worker process parses and stages, the writer
    # thread loads and a derive thread derives, all at once: their shares of the wall time add
    # up to more than 100%.
    for stage, seconds in full["median_stages_s"].items():
        share = f" ({seconds / wall:.0%} of wall)" if wall else ""
        who, _, what = stage.partition(": ")
        who = "worker process" if who == "worker" else f"{who} thread"
        rows.append((f"  {who}: {what}", f"{_fmt_s(seconds)}{share}"))
    rows += _cpu_rows(full.get("median_cpu_s") or {}, wall, results.get("machine", {}).get("cores"))
    collected = full.get("median_gc")
    if collected:
        rows.append((
            "  garbage collections in the sync process",
            f"{collected['collections']:.0f} ({collected['full']:.0f} full), "
            f"{_fmt_s(collected['seconds'])} with the GIL held",
        ))  # fmt: skip
    rows += _instruction_rows(results.get("instructions"))
    rows.append(("peak RSS of the full sync", _fmt_mb(full["median_peak_rss_kb"])))
    for count, kb in results.get("rss_at_kb", {}).items():
        rows.append((f"  peak RSS after {int(count):,} messages", _fmt_mb(kb)))
    noop = results.get("noop")
    if noop:
        per_folder = ", ".join(f"{f} {s:.3f} s" for f, s in noop["median_folder_s"].items())
        rows.append(("no-op sync, per folder", per_folder))
        rows.append(
            (
                "no-op sync, whole call",
                f"{_fmt_s(noop['median_wall_s'])} warm; "
                f"{_fmt_s(noop['first_call_s'])} first call in a fresh process",
            )
        )
    beside = results.get("large")
    if beside:
        rows.append((
            f"full sync beside {beside['messages_beside']:,} messages of "
            f"{beside['clones']} other inboxes",
            f"{_fmt_s(beside['median_wall_s'])}, {_fmt_rate(beside['median_rate'])}",
        ))  # fmt: skip
        rows.append(("  beside them: derive steps", _fmt_s(beside["median_derive_s"])))
        rows.append(("  beside them: CPU time, PostgreSQL", _fmt_s(beside["median_pg_cpu_s"])))
    dag = results.get("dag")
    if dag:
        rows.append(
            (
                f"DAG: {dag['inboxes']} inboxes x {dag['per_inbox']:,} (`airflow dags test`)",
                f"{_fmt_s(dag['median_wall_s'])} wall, {_fmt_rate(dag['median_rate'])}",
            )
        )
        rows.append(("  sync's own time (sum over tasks)", _fmt_s(dag["median_sync_s"])))
        rows.append(("  task durations (sum, Airflow's view)", _fmt_s(dag["median_task_s"])))
        rows.append(("  Airflow overhead (wall - sync's own)", _fmt_s(dag["median_overhead_s"])))
    return _markdown(("measure", "value"), rows)


def tables(results: dict[str, Any]) -> str:
    """`table`, and `statements_table` below it when the profiled run counted statements."""
    text = table(results)
    if "statements" in results.get("profile", {}):
        text += "\n\n" + statements_table(results)
    return text


def statements_table(results: dict[str, Any]) -> str:
    """PostgreSQL's statement time over the profiled sync, by statement (``pg_stat_statements``,
    `inboxsync.bench.statements`), as a Markdown table under a one-line heading."""
    counted = results["profile"]["statements"]
    total = counted["total_s"]
    rows = [
        (s["statement"], f"{s['calls']:,}", _fmt_s(s["seconds"]),
         f"{s['seconds'] / total:.0%}" if total else "n/a")
        for s in counted["top"]
    ]  # fmt: skip
    heading = (
        f"PostgreSQL statement time over the profiled full sync: {_fmt_s(total)} "
        f"(pg_stat_statements, top-level statements; the {len(rows)} longest)"
    )
    return heading + "\n\n" + _markdown(("statement", "calls", "time", "share"), rows)


def _cpu_rows(cpu_s: dict[str, float], wall: float, cores: int | None) -> list[tuple[str, str]]:
    """CPU seconds by process during the full sync, and how many cores that kept busy."""
    if not cpu_s or not wall:
        return []
    busy = f"{cpu_s['all'] / wall:.2f} cores busy on average"
    rows = [("CPU time of the full sync, all processes",
             f"{_fmt_s(cpu_s['all'])}: {busy}" + (f" of {cores}" if cores else ""))]  # fmt: skip
    for name, seconds in cpu_s.items():
        if name != "all":
            share = seconds / cpu_s["all"]
            rows.append((f"  CPU time: {name}", f"{_fmt_s(seconds)} ({share:.0%})"))
    return rows


def _instruction_rows(counted: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The worker's instructions per message (`inboxsync.bench.instructions`), when counted."""
    if not counted:
        return []
    label = "  parse worker: instructions per message (callgrind"
    if "error" in counted:
        return [(label + ")", "not counted: " + counted["error"].splitlines()[0])]
    per = counted["per_message"]
    python = counted.get("python_per_message")
    if python is None:
        paths = ""
    elif counted.get("fast_path"):
        paths = f" (pure Python parse: {python['parse']:,.0f}; {python['stage']:,.0f})"
    else:
        paths = " (the C fast path is not built: both are the pure Python parse)"
    return [(
        f"{label}, {counted['messages']:,} headers)",
        f"parse {per['parse']:,.0f}; parse and stage {per['stage']:,.0f}{paths}",
    )]  # fmt: skip


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    for row in rows:
        lines.append(
            "| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        )
    return "\n".join(lines)
