"""The whole benchmark: services, seeding, the ceiling, full and no-op syncs, the warehouse floor,
the DAG, the report.

Every sync goes through ``inboxsync.sync.sync_inbox``, the DAG task's code path: the single-inbox
runs in a child process (:mod:`inboxsync.bench.probe`) so peak RSS is the sync's own, the 8-inbox
run through ``airflow dags test inbox_sync``. Each full run starts from a fresh warehouse. Figures
are medians of ``runs`` runs, or of one run when a run takes a minute or more.

State lives under ``.local/bench`` (``BENCH_ROOT``); seeded mailboxes are kept and reused by later
runs with the same N (a marker file records a completed seeding).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inboxsync import local_airflow, localenv, marts, registry, settings, warehouse
from inboxsync.bench import ceiling, corpus, cpu, floor, instructions, large, report, statements
from inboxsync.localenv.system import LocalEnvError, apt_install

log = logging.getLogger("inboxsync.bench")

REPO = Path(__file__).resolve().parents[3]
CORPUS_DIR = REPO.parent / "shared" / "corpora" / "lists"
PASSWORD = "bench-secret"
DAG_ID = "inbox_sync"
DAG_INBOXES = 8
RSS_POINTS = (10_000, 50_000, 100_000)
#: A run at least this long is not repeated (the issue: medians where a run takes under a minute).
REPEAT_LIMIT_S = 60.0
SEED_VERSION = 1


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, "") or default)


# -- seeding ----------------------------------------------------------------------------------


def seed(
    services: localenv.LocalServices, root: Path, users: list[tuple[str, int]], n: int
) -> dict[str, Any]:
    """Give each (user, count) its share of one stream of ``n`` benchmark messages.

    The users' counts add up to ``n``; user k gets the messages after those of users 0..k-1, so
    the users together hold exactly the same messages as one inbox of ``n``. Users whose marker
    says they are complete are kept as they are (the stream is still read past their share).
    """
    assert sum(count for _, count in users) == n
    stream = corpus.bench_messages(corpus.corpus_paths(CORPUS_DIR), n)
    written = 0
    started = time.perf_counter()
    for user, count in users:
        marker = root / "seeded" / user
        share = itertools.islice(stream, count)
        expected = {"messages": count, "version": SEED_VERSION}
        if marker.exists() and json.loads(marker.read_text()) == expected:
            for _ in share:
                pass
            continue
        home = services.maildir(user).parent
        shutil.rmtree(home, ignore_errors=True)
        services.add_mail_user(user, PASSWORD)
        services.maildir(user, "Sent")
        written += services.deliver(user, "INBOX", share)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(expected))
    for user, _ in users:
        services.add_mail_user(user, PASSWORD)  # idempotent; the passwd-file may be gone
    seconds = time.perf_counter() - started
    return {"messages": written, "seconds": seconds if written else None}


def register(services: localenv.LocalServices, url: str, name: str, user: str) -> None:
    """Register ``user``'s mailbox as inbox ``name`` in the warehouse at ``url``."""
    with warehouse.transaction(url) as cur:
        registry.add_inbox(
            cur,
            name,
            host=services.host,
            port=services.imaps_port,
            security="ssl",
            username=user,
            password=PASSWORD,
            owner_email=user,
            create_contacts=True,
            ca_file=str(services.ca_file),
        )


def fresh_warehouse(services: localenv.LocalServices, db: str) -> str:
    """Drop and recreate ``db`` and migrate it, then checkpoint; returns its URL.

    Every timed run starts from the same server state: the checkpoint writes out what the
    harness's earlier steps left dirty in the shared buffers, which the run would otherwise
    write while it evicts them (a sync right after another database's sync: 0.6-1.0 s more wall
    and 0.7-0.9 s more PostgreSQL CPU, 2 pairs of the same hour). The run's own checkpoints it
    still pays for (a 100,000-message sync writes more WAL than one takes).
    """
    url = services.create_database(db, drop=True)
    warehouse.migrate(url)
    with warehouse.transaction(url) as cur:
        cur.execute("CHECKPOINT")
    return url


# -- measuring --------------------------------------------------------------------------------


def probe(
    args: list[str], profile_to: Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run :mod:`inboxsync.bench.probe` in a child process (under py-spy when profiling), with
    ``env`` added to its environment."""
    cmd = [sys.executable, "-m", "inboxsync.bench.probe", *args]
    if profile_to is not None:
        py_spy = Path(sys.executable).with_name("py-spy")
        if not py_spy.exists():
            raise RuntimeError("profiling needs py-spy: pip install -e '.[dev]'")
        cmd = [str(py_spy), "record", "--format", "raw", "--rate", "250", "--idle",
               "-o", str(profile_to), "--", *cmd]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    # py-spy may fail to reap a child that has already exited ("No child process") after writing
    # the profile: the child's own result line and the profile file are what count.
    profiled_ok = profile_to is not None and profile_to.exists() and '{"mode"' in proc.stdout
    if proc.returncode != 0 and not profiled_ok:
        raise RuntimeError(f"probe {args[0]} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"probe {args[0]} printed no result:\n{proc.stdout[-2000:]}")


def probe_with_servers(
    services: localenv.LocalServices, args: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """`probe`, with the servers' CPU seconds over its run in ``server_cpu_s``."""
    before = server_cpu(services)
    out = probe(args, env=env)
    out["server_cpu_s"] = _since(services, before)
    return out


def server_cpu(services: localenv.LocalServices) -> dict[str, float]:
    """CPU seconds so far of the PostgreSQL and Dovecot process trees (`inboxsync.bench.cpu`)."""
    return {
        "PostgreSQL": cpu.tree_seconds(services.pg_pid),
        "Dovecot": cpu.tree_seconds(services.dovecot_pid),
    }


def run_ceiling(services: localenv.LocalServices, user: str) -> ceiling.CeilingResult:
    return ceiling.raw_fetch(
        services.host,
        services.imaps_port,
        user,
        PASSWORD,
        ca_file=str(services.ca_file),
        batch_size=settings.BATCH_SIZE,
    )


#: The environment of the pure Python sync: both C fast paths off (`inboxsync.native`).
PURE_PYTHON = {"INBOXSYNC_PARSE": "python", "INBOXSYNC_FETCH": "python"}


def run_python_parse(services: localenv.LocalServices, user: str) -> dict[str, Any]:
    """The full sync again in pure Python (`PURE_PYTHON`: the parse and the FETCH reader): the C
    fast paths' gain, measured beside it in the same run."""
    url = fresh_warehouse(services, "bench_python")
    register(services, url, "bench full", user)
    log.info("the same full sync in pure Python (parse and FETCH reader)")
    out = probe_with_servers(
        services, ["full", "--inbox", "bench full", "--url", url], env=PURE_PYTHON
    )
    log.info(
        "  %.1f s, the worker's CPU %.1f s, the sync process's %.1f s",
        out["wall_s"], out["worker_cpu_s"], out["cpu_s"],
    )  # fmt: skip
    services.drop_databases("bench_python")  # its buffers go with it, unwritten
    return out


def summarise_python_parse(
    runs: list[dict[str, Any]], full: dict[str, Any], n: int
) -> dict[str, Any] | None:
    """Medians of the pure Python syncs, and how much longer they took than the sync's."""
    wall = report.median(r["wall_s"] for r in runs)
    if not wall:
        return None
    return {
        "runs": [{k: r[k] for k in ("wall_s", "cpu_s", "worker_cpu_s")} for r in runs],
        "median_wall_s": wall,
        "median_rate": n / wall,
        "median_worker_cpu_s": report.median(r["worker_cpu_s"] for r in runs),
        "median_cpu_s": report.median(r["cpu_s"] for r in runs),
        "slower": wall / full["median_wall_s"] if full["median_wall_s"] else None,
    }


def run_floor(services: localenv.LocalServices, root: Path, synced_url: str) -> floor.FloorResult:
    """The rows the full sync stored at ``synced_url``, written again into a fresh warehouse."""
    target = fresh_warehouse(services, "bench_floor")
    try:
        return floor.measure(
            synced_url,
            target,
            root / "floor",
            batch_size=settings.BATCH_SIZE,
            pg_pid=services.pg_pid,
        )
    finally:
        services.drop_databases("bench_floor")  # its buffers go with it, unwritten


def _since(services: localenv.LocalServices, before: dict[str, float]) -> dict[str, float]:
    """The servers' CPU seconds since ``before`` (a `server_cpu` reading)."""
    return {name: seconds - before[name] for name, seconds in server_cpu(services).items()}


def summarise_floor(floors: list[floor.FloorResult], n: int) -> dict[str, Any]:
    """Medians of the warehouse floor's runs (`inboxsync.bench.floor`); its rate counts the
    ``n`` messages the sync fetched, as the sync's does (the rows are theirs)."""
    wall = report.median(f.seconds for f in floors)
    return {
        "runs": [f.__dict__ for f in floors],
        "median_s": wall,
        "median_rate": n / wall if wall else None,
        "median_pg_cpu_s": report.median(f.pg_cpu_s for f in floors),
    }


def summarise_full(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """Medians over full-sync probe results.

    Stages are "thread: stage": the sync's thread fetches batches, a worker process parses and
    stages them (after the first few, which the sync's thread does), the writer's thread loads
    them and a derive thread runs derive steps beside it, so the stages overlap. The sync
    thread's ``other`` is its wall time no stage accounts for: waiting for the worker or for a
    writer that is behind, plus EXAMINE, planning and bookkeeping.
    """
    stages: dict[str, list[float]] = {}
    for run in runs:
        for stage, seconds in sorted(run["stages_s"].items()):
            stages.setdefault(stage, []).append(seconds)
        covered = sum(s for k, s in run["stages_s"].items() if k.startswith("sync:"))
        stages.setdefault("sync: other (waiting for worker and writer, examine, plan)", []).append(
            run["wall_s"] - covered
        )
    wall = report.median(r["wall_s"] for r in runs)
    points = {p for r in runs for p in r["peak_rss_at_kb"]}
    # CPU by process: the servers' over the probe's whole run (its start-up included, when they
    # have little to do), the sync's and its worker's over the sync itself.
    cpu_s: dict[str, list[float]] = {}
    for run in runs:
        by_process = {**run["server_cpu_s"], "sync process": run["cpu_s"],
                      "parse worker": run["worker_cpu_s"]}  # fmt: skip
        by_process["all"] = sum(by_process.values())
        for name, seconds in by_process.items():
            cpu_s.setdefault(name, []).append(seconds)
    return {
        "runs": runs,
        "median_wall_s": wall,
        "median_rate": n / wall if wall else None,
        "median_cpu_s": {k: report.median(v) for k, v in cpu_s.items()},
        "median_stages_s": {k: report.median(v) for k, v in stages.items()},
        "median_peak_rss_kb": report.median(r["peak_rss_kb"] for r in runs),
        "median_gc": {
            key: report.median(r["gc"][key] for r in runs)
            for key in ("collections", "full", "seconds")
        }
        if all("gc" in r for r in runs)
        else None,
        "rss_at_kb": {
            p: report.median(r["peak_rss_at_kb"][p] for r in runs if p in r["peak_rss_at_kb"])
            for p in sorted(points, key=int)
        },
    }


def summarise_noop(out: dict[str, Any]) -> dict[str, Any]:
    folders: dict[str, list[float]] = {}
    for call in out["calls"]:
        for f in call["result"]["folders"]:
            folders.setdefault(f["folder"], []).append(f["seconds"])
    return {
        "probe": out,
        "median_folder_s": {k: report.median(v) for k, v in folders.items()},
        "median_wall_s": report.median(c["wall_s"] for c in out["calls"]),
        "first_call_s": out["first_call"]["wall_s"],
        "fetched": sum(c["result"]["fetched"] for c in out["calls"]),
    }


def run_large(services: localenv.LocalServices, n: int, runs: int, clones: int) -> dict[str, Any]:
    """The full sync again, beside ``clones`` x N messages of other inboxes
    (:mod:`inboxsync.bench.large`), built from the last full run's warehouse."""
    log.info("a warehouse of %d clones of the inbox's mail (BENCH_LARGE)", clones)
    large_runs: list[dict[str, Any]] = []
    try:
        template = large.build(services, "bench_full", "bench_large_template",
                               inbox="bench full", clones=clones)  # fmt: skip
        log.info("  %s messages in %.0f s", f"{template.messages:,}", template.seconds)
        for k in range(runs):
            url = services.create_database("bench_large", drop=True, template=template.name)
            log.info("full sync beside them, run %d of %d", k + 1, runs)
            out = probe_with_servers(services, ["full", "--inbox", "bench full", "--url", url])
            large_runs.append(out)
            log.info("  %.1f s", out["wall_s"])
            if out["wall_s"] >= REPEAT_LIMIT_S:
                break
    finally:  # a few GB each; also when building the template failed
        services.drop_databases("bench_large", "bench_large_template")
    wall = report.median(r["wall_s"] for r in large_runs)
    return {
        "clones": clones,
        "messages_beside": template.messages,
        "build_s": template.seconds,
        "runs": large_runs,
        "median_wall_s": wall,
        "median_rate": n / wall if wall else None,
        "median_pg_cpu_s": report.median(r["server_cpu_s"]["PostgreSQL"] for r in large_runs),
        # The derive steps beside the load and the final one after it.
        "median_derive_s": report.median(
            r["stages_s"].get("derive: derive", 0.0) + r["stages_s"].get("sync: derive", 0.0)
            for r in large_runs
        ),
    }


def run_dag(
    services: localenv.LocalServices, env: dict[str, str], root: Path, users: list[str], k: int
) -> dict[str, Any]:
    """One ``airflow dags test inbox_sync`` over the DAG users' inboxes in a fresh warehouse."""
    url = fresh_warehouse(services, env_db(env))
    for i, user in enumerate(users, 1):
        register(services, url, f"bench dag {i}", user)
    # Parsing the dags folder renders inbox_marts from dbt's manifest; a fresh checkout has none
    # yet and runs `dbt parse` (about 8 s) on the first parse: set-up, not a DAG run's overhead.
    marts.ensure_manifest()
    started = time.perf_counter()
    local_airflow.airflow(env, "dags", "test", DAG_ID, log_path=root / "logs" / f"dag-{k}.log")
    wall = time.perf_counter() - started
    tasks = _dag_tasks(services)
    synced = _count(url, "SELECT count(*) FROM inboxsync.message_copies")
    return {"wall_s": wall, "copies": synced, **tasks}


def env_db(env: dict[str, str]) -> str:
    return env["AIRFLOW_CONN_INBOXSYNC_WAREHOUSE"].rsplit("/", 1)[1]


def _count(url: str, sql: str) -> int:
    with warehouse.transaction(url) as cur:
        cur.execute(sql)
        return int(cur.fetchone()[0])


def _dag_tasks(services: localenv.LocalServices) -> dict[str, Any]:
    """The latest DAG run's sync tasks: durations and the sync's own seconds from their XComs."""
    import psycopg2

    conn = psycopg2.connect(services.pg_url(METADATA_DB))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT run_id FROM dag_run WHERE dag_id = %s ORDER BY id DESC LIMIT 1", (DAG_ID,)
            )
            run_id = cur.fetchone()[0]
            cur.execute(
                "SELECT task_id, map_index, state, extract(epoch FROM end_date - start_date)"
                " FROM task_instance WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            )
            tis = cur.fetchall()
            cur.execute(
                "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s"
                " AND key = 'return_value'",
                (DAG_ID, run_id, "sync_inbox"),
            )
            values = [v if isinstance(v, dict) else json.loads(v) for (v,) in cur.fetchall()]
    finally:
        conn.close()
    # The sync's own seconds: each sync_inbox call's wall time (its folders and the writer's
    # load and derive overlap, so their seconds do not add up).
    sync_s = sum(v["seconds"] for v in values)
    return {
        "run_id": run_id,
        "task_states": sorted({state for _, _, state, _ in tis}),
        "task_s": sum(float(d or 0) for t, _, _, d in tis if t == "sync_inbox"),
        "all_tasks_s": sum(float(d or 0) for *_, d in tis),
        "sync_s": sync_s,
        "fetched": sum(v["fetched"] for v in values),
    }


METADATA_DB = "bench_airflow"


def machine(services: localenv.LocalServices) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    dovecot = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout
    with warehouse.transaction(services.pg_url("postgres")) as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "dovecot": dovecot.strip(),
        "postgresql": pg,
    }


# -- the whole run ----------------------------------------------------------------------------


def run(
    n: int, runs: int, root: Path, out_dir: Path, profile: bool, dag: bool, clones: int = 0
) -> dict[str, Any]:
    """Run every measurement and return the figures (also written to ``out_dir``)."""
    services = localenv.start(root)
    services.create_database("bench_dag")
    env = local_airflow.airflow_env(
        services, root / "airflow", metadata_db=METADATA_DB, warehouse_db="bench_dag"
    )
    local_airflow.apply_env(env)
    local_airflow.migrate_metadata(env)

    full_user = f"bench-{n}@bench.example"
    per_inbox = [n // DAG_INBOXES + (1 if i < n % DAG_INBOXES else 0) for i in range(DAG_INBOXES)]
    dag_users = [f"bench-{n}-dag{i}@bench.example" for i in range(1, DAG_INBOXES + 1)]
    log.info("seeding %s messages into %s, and into %d DAG inboxes", n, full_user, DAG_INBOXES)
    seeded = seed(services, root, [(full_user, n)], n)
    if dag:
        seed(services, root, list(zip(dag_users, per_inbox, strict=True)), n)

    log.info("raw ceiling (first pass also warms Dovecot's cache)")
    cold = run_ceiling(services, full_user)
    checkpoints = ",".join(str(p) for p in (*RSS_POINTS, n) if p <= n)
    full_runs: list[dict[str, Any]] = []
    ceilings: list[ceiling.CeilingResult] = []
    ceiling_cpu: list[dict[str, float]] = []
    floors: list[floor.FloorResult] = []
    python_runs: list[dict[str, Any]] = []
    url = ""
    for k in range(runs):
        servers_before = server_cpu(services)
        ceilings.append(run_ceiling(services, full_user))
        ceiling_cpu.append(_since(services, servers_before))
        url = fresh_warehouse(services, "bench_full")
        register(services, url, "bench full", full_user)
        log.info("full sync, run %d of %d", k + 1, runs)
        full_runs.append(probe_with_servers(
            services, ["full", "--inbox", "bench full", "--url", url, "--checkpoints", checkpoints]
        ))  # fmt: skip
        fetched = full_runs[-1]["result"]["fetched"]
        log.info("  %.1f s, %d messages fetched", full_runs[-1]["wall_s"], fetched)
        if fetched != n:
            log.warning("the full sync fetched %d messages, not %d", fetched, n)
        log.info("warehouse floor: the same rows written again by binary COPY")
        floors.append(run_floor(services, root, url))
        log.info("  %.1f s, PostgreSQL CPU %.1f s", floors[-1].seconds, floors[-1].pg_cpu_s)
        python_runs.append(run_python_parse(services, full_user))
        if full_runs[-1]["wall_s"] >= REPEAT_LIMIT_S:
            break
    full = summarise_full(full_runs, n)
    ceiling_s = report.median(c.seconds for c in ceilings)
    results: dict[str, Any] = {
        "n": n,
        "runs": len(full_runs),
        "batch_size": settings.BATCH_SIZE,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(services),
        "seed": seeded if seeded["seconds"] else None,
        "ceiling": {
            "runs": [c.__dict__ for c in ceilings],
            "cold": cold.__dict__,
            "cold_rate": cold.rate,
            "median_s": ceiling_s,
            "median_rate": n / ceiling_s if ceiling_s else None,
            "median_dovecot_cpu_s": report.median(c["Dovecot"] for c in ceiling_cpu),
        },
        "floor": summarise_floor(floors, n),
        "full_sync": full,
        "python_parse": summarise_python_parse(python_runs, full, n),
        "rss_at_kb": full["rss_at_kb"],
    }
    if full["median_rate"] and results["ceiling"]["median_rate"]:
        results["ratio"] = full["median_rate"] / results["ceiling"]["median_rate"]
    if full["median_rate"] and results["floor"]["median_rate"]:
        results["floor_ratio"] = full["median_rate"] / results["floor"]["median_rate"]

    log.info("no-op sync of the up-to-date inbox")
    results["noop"] = summarise_noop(
        probe(["noop", "--inbox", "bench full", "--url", url, "--repeats", str(max(runs, 3))])
    )

    if clones:
        results["large"] = run_large(services, n, runs, clones)

    if profile:
        log.info("profiled full sync (py-spy, and PostgreSQL's statements when it can count them)")
        url = fresh_warehouse(services, "bench_full")
        register(services, url, "bench full", full_user)
        counting = statements.available(url)
        if counting:
            statements.count(url)
        path = out_dir / f"profile-full-{n}.txt"
        out_dir.mkdir(parents=True, exist_ok=True)
        profiled = probe(["full", "--inbox", "bench full", "--url", url], profile_to=path)
        results["profile"] = {
            "path": str(path),
            "wall_s": profiled["wall_s"],
            **report.collapsed_summary(path.read_text().splitlines(), 25, within="sync_inbox"),
        }
        if counting:
            total, ranked = statements.top(url)
            results["profile"]["statements"] = {
                "total_s": total,
                "top": [asdict(s) for s in ranked],
            }

    if dag:
        for user in dag_users:  # Dovecot's first read of a new Maildir is not the DAG's cost
            run_ceiling(services, user)
        dag_runs = []
        for k in range(runs):
            log.info("DAG run %d of %d", k + 1, runs)
            dag_runs.append(run_dag(services, env, root, dag_users, k))
            log.info("  %.1f s", dag_runs[-1]["wall_s"])
            if dag_runs[-1]["wall_s"] >= REPEAT_LIMIT_S:
                break
        wall = report.median(r["wall_s"] for r in dag_runs)
        results["dag"] = {
            "inboxes": DAG_INBOXES,
            "per_inbox": n // DAG_INBOXES,
            "runs": dag_runs,
            "median_wall_s": wall,
            "median_rate": n / wall if wall else None,
            "median_sync_s": report.median(r["sync_s"] for r in dag_runs),
            "median_task_s": report.median(r["task_s"] for r in dag_runs),
            "median_overhead_s": report.median(r["wall_s"] - r["sync_s"] for r in dag_runs),
        }
    results["instructions"] = run_instructions(n)
    return results


def run_instructions(n: int) -> dict[str, Any]:
    """The worker's instructions per message over a sample of the benchmark's headers
    (:mod:`inboxsync.bench.instructions`), or why there is no count."""
    log.info("the parse worker's instructions per message (callgrind)")
    try:
        if shutil.which("valgrind") is None:
            apt_install(["valgrind"])
        stream = corpus.bench_messages(corpus.corpus_paths(CORPUS_DIR), n)
        counts = instructions.measure(instructions.sample(stream))
    except (instructions.InstructionsUnavailable, LocalEnvError) as exc:
        log.warning("no instruction counts: %s", exc)
        return {"error": str(exc)}
    return asdict(counts)


def write(results: dict[str, Any], out_dir: Path, publish: Path | None) -> Path:
    """Write latest.json (and a timestamped copy) and latest.md; also into ``publish``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, default=str) + "\n"
    table = report.tables(results) + "\n"
    stamp = results["measured_at"].replace(":", "").replace("-", "")
    (out_dir / f"{stamp}-n{results['n']}.json").write_text(text)
    latest = out_dir / "latest.json"
    for directory in filter(None, (out_dir, publish)):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "latest.json").write_text(text)
        (directory / "latest.md").write_text(table)
    return latest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inboxsync.bench", description=__doc__)
    parser.add_argument("-n", type=int, default=_env_int("BENCH_N", 100_000))
    parser.add_argument("--runs", type=int, default=_env_int("BENCH_RUNS", 3))
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("BENCH_ROOT") or
                        REPO / ".local" / "bench"))  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench-results")
    parser.add_argument("--profile", action="store_true", default=bool(os.environ.get(
        "BENCH_PROFILE")), help="add a full sync under py-spy (BENCH_PROFILE=1)")  # fmt: skip
    parser.add_argument("--no-dag", dest="dag", action="store_false", help="skip the DAG runs")
    parser.add_argument("--large", type=int, default=_env_int("BENCH_LARGE", 0), metavar="K",
                        help="also sync beside K clones of its mail (BENCH_LARGE=K)")  # fmt: skip
    parser.add_argument("--publish", type=Path, default=os.environ.get("BENCH_PUBLISH") or None,
                        help="also write latest.json/.md here (e.g. docs/bench)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("inboxsync.localenv").setLevel(logging.WARNING)
    if args.n < DAG_INBOXES:
        parser.error(f"-n must be at least {DAG_INBOXES}")
    results = run(args.n, max(args.runs, 1), args.root.resolve(), args.out, args.profile, args.dag,
                  max(args.large, 0))  # fmt: skip
    path = write(results, args.out, args.publish)
    m = results["machine"]
    print(
        f"\ninboxsync bench, N = {args.n:,}, {results['runs']} run(s), batch "
        f"{results['batch_size']}; {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Python {m['python']}, PostgreSQL {m['postgresql']}, Dovecot {m['dovecot']}\n"
    )
    print(report.tables(results))
    if "profile" in results:
        prof = results["profile"]
        print(f"\nprofile of sync_inbox ({prof['path']}), share of its samples")
        for kind in ("inclusive", "self"):
            print(f"{kind}:")
            for name, share in prof[kind]:
                print(f"  {share:6.1%}  {name}")
    print(f"\nfigures: {path}")
    return 0
