"""Wall time and database writes of a surface screen: batched placement jobs against one job
per (slab, adsorbate), measured in one run.

The same campaign (bulks x facets x adsorbates on small slabs, at least 200 placements)
runs locally twice, each against a fresh embedded database server (``omni_flows.server``,
its own home folder): once with the placements of many slabs relaxed together in jobs of
at most ``--batch-atoms`` atoms, once with ``batch_atoms=0`` (one job per slab and
adsorbate, the earlier behaviour). The two run at the same time, each in its own process
with one thread (``--sequential``: one after the other), so that on a shared machine both
see the same load; each reports its wall time and the CPU time of its process. Database
writes are the insert, update, delete and findAndModify commands every pymongo client of a
process sends (a ``monitoring.CommandListener`` registered before any client exists), with
the documents they wrote. The model is loaded and run once before the timing starts. Both
must file the same placement documents (same keys, energies within 1e-4 eV).

    python benchmarks/bench_scaleout.py [--batch-atoms 1024] [--sequential] [--out FILE]
"""

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from pymongo import monitoring

WRITE_COMMANDS = ("insert", "update", "delete", "findAndModify")


class CommandCounter(monitoring.CommandListener):
    """Commands sent by every client, by name; documents written by the write commands."""

    def __init__(self) -> None:
        self.commands: Counter = Counter()
        self.documents: Counter = Counter()

    def reset(self) -> None:
        self.commands.clear()
        self.documents.clear()

    def started(self, event) -> None:
        self.commands[event.command_name] += 1
        if event.command_name == "insert":
            self.documents["inserted"] += len(event.command.get("documents", []))
        elif event.command_name == "update":
            self.documents["updated"] += len(event.command.get("updates", []))
        elif event.command_name == "delete":
            self.documents["deleted"] += len(event.command.get("deletes", []))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    @property
    def writes(self) -> int:
        return sum(self.commands[name] for name in WRITE_COMMANDS)


COUNTER = CommandCounter()
monitoring.register(COUNTER)  # before any client: every client of the process reports


def campaign(args, batch_atoms: int):
    from omni_flows.workflows.flows.campaign import SurfaceCampaign
    from omni_flows.workflows.structures.placements import PlacementSettings
    from omni_flows.workflows.settings import MLIPSettings
    from omni_flows.workflows.structures.slabs import SlabSpec

    return SurfaceCampaign(
        bulks=args.bulks, facets=args.facets, adsorbates=args.adsorbates,
        mlip=MLIPSettings(device=args.device),
        slab_spec=SlabSpec(n_layers=3, n_fixed_layers=1, supercell=(2, 2)),
        placements=PlacementSettings(n_random=args.n_random, max_placements=args.max_placements),
        batch_atoms=batch_atoms,
    )


def fresh_settings(home: Path):
    import socket

    from omni_flows.settings import Settings

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Settings(home=home, mongodb_uri=None, db_port=port, database="bench_scaleout")


def screen(args, batch_atoms: int, home: Path) -> tuple[dict, list[dict]]:
    """One screen against a fresh server in ``home``: wall time, jobs, commands, documents."""
    from omni_flows.engines.local import run_local
    from omni_flows.server import start_server, stop_server
    from omni_flows.stores import connect_database, job_store

    settings = fresh_settings(home)
    start_server(settings)
    try:
        flow = campaign(args, batch_atoms).make()
        jobs = [job for job, _ in flow.iterflow()]
        store = job_store(settings)  # indexes built here, before the count starts
        store.connect()
        COUNTER.reset()
        start = time.perf_counter()
        run_local(flow, settings=settings, store=store)
        seconds = time.perf_counter() - start
        commands, documents, writes = dict(COUNTER.commands), dict(COUNTER.documents), \
            COUNTER.writes
        db = connect_database(settings)
        placements = list(db["adsorption_placements"].find(
            {}, {"_id": 0, "slab_id": 1, "adsorbate_id": 1, "placement_index": 1,
                 "settings_id": 1, "energy": 1, "adsorption_energy": 1, "site_type": 1,
                 "converged": 1}))
        best = db["adsorption_best"].count_documents({})
        db.client.close()
        store.docs_store.close()
    finally:
        stop_server(settings)
    placement_jobs = [j for j in jobs if j.name.startswith("placements ")]
    return {
        "batch_atoms": batch_atoms,
        "wall_s": round(seconds, 1),
        "jobs": len(jobs),
        "placement_jobs": len(placement_jobs),
        "placements": len(placements),
        "converged": sum(bool(d.get("converged")) for d in placements),
        "best_documents": best,
        "write_commands": writes,
        "documents_written": documents,
        "commands": commands,
        "all_commands": sum(commands.values()),
    }, placements


def compare(a: list[dict], b: list[dict]) -> dict:
    """Same keys and settings ids; largest energy difference, sites that differ."""
    def key(d):
        return (d["slab_id"], d["adsorbate_id"], d["placement_index"], d["settings_id"])

    by_a, by_b = {key(d): d for d in a}, {key(d): d for d in b}
    common = set(by_a) & set(by_b)
    return {
        "same_keys": set(by_a) == set(by_b),
        "max_abs_dE_eV": max((abs(by_a[k]["energy"] - by_b[k]["energy"]) for k in common),
                             default=None),
        "different_sites": sum(by_a[k]["site_type"] != by_b[k]["site_type"] for k in common),
    }


def parse_args(argv=None):
    p = argparse.ArgumentParser()
    # 2 bulks x 3 facets x 3 adsorbates: 18 (slab, adsorbate) pairs; n_random 9 gave 192
    # placements (benchmarks/results/bench_scaleout.json), 10 gives 210
    p.add_argument("--bulks", nargs="+", default=["Pt", "Cu"])
    p.add_argument("--facets", nargs="+", default=["111", "100", "110"])
    p.add_argument("--adsorbates", nargs="+", default=["O", "H", "N"])
    p.add_argument("--n-random", type=int, default=10)
    p.add_argument("--max-placements", type=int, default=None)
    p.add_argument("--batch-atoms", type=int, default=1024)
    p.add_argument("--device", default="cpu")
    p.add_argument("--sequential", action="store_true", help="one mode after the other")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bench_scaleout.json"))
    p.add_argument("--mode", help=argparse.SUPPRESS)  # a child process: run one mode
    p.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child(args) -> None:
    """One mode in this process; its figures and placements as JSON on stdout's last line."""
    import torch
    from ase.build import fcc111

    from omni_flows.workflows.relax import relax

    warnings.filterwarnings("ignore")
    logging.getLogger("jobflow").setLevel(logging.WARNING)
    # the model loaded and its first graphs run once, before the timing
    relax([fcc111("Cu", (2, 2, 3), vacuum=6.0)], campaign(args, 0).mlip)
    batch_atoms = args.batch_atoms if args.mode == "batched" else 0
    cpu = time.process_time()
    figures, placements = screen(args, batch_atoms, args.home)
    figures["cpu_s"] = round(time.process_time() - cpu, 1)
    figures["torch_threads"] = torch.get_num_threads()
    print(json.dumps({"figures": figures, "placements": placements}))


def main() -> None:
    args = parse_args()
    if args.mode:
        child(args)
        return
    passed = [a for a in sys.argv[1:] if a != "--sequential"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs, placements = {}, {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as tmp:
        procs = {}
        for mode in ("batched", "per_pair"):
            cmd = [sys.executable, __file__, *passed, "--mode", mode, "--home",
                   str(Path(tmp, mode))]
            procs[mode] = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
            if args.sequential:
                procs[mode].wait()
        for mode, proc in procs.items():
            out, _ = proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"{mode} run failed ({proc.returncode})")
            found = json.loads(out.strip().splitlines()[-1])
            runs[mode], placements[mode] = found["figures"], found["placements"]
    b, u = runs["batched"], runs["per_pair"]
    result = {
        "campaign": {"bulks": args.bulks, "facets": args.facets, "adsorbates": args.adsorbates,
                     "slab": "2x2, 3 layers (1 fixed)", "n_random": args.n_random,
                     "max_placements": args.max_placements},
        "machine": {"cpu": platform.processor() or platform.machine(), "device": args.device,
                    "cores": os.cpu_count(), "load_average_at_end": os.getloadavg(),
                    "modes": "one after the other" if args.sequential else "at the same time"},
        "total_wall_s": round(time.perf_counter() - start, 1),
        **runs,
        "ratios_per_pair_over_batched": {
            "wall_time": round(u["wall_s"] / b["wall_s"], 2),
            "cpu_time": round(u["cpu_s"] / b["cpu_s"], 2),
            "write_commands": round(u["write_commands"] / b["write_commands"], 2),
            "all_commands": round(u["all_commands"] / b["all_commands"], 2),
            "jobs": round(u["jobs"] / b["jobs"], 2),
        },
        "same_documents": compare(placements["batched"], placements["per_pair"]),
    }
    print(f"{'':10} {'batch_atoms':>11} {'wall s':>8} {'cpu s':>7} {'jobs':>5} "
          f"{'placement jobs':>15} {'placements':>10} {'write cmds':>10} {'all cmds':>9}")
    for name, r in runs.items():
        print(f"{name:10} {r['batch_atoms']:>11} {r['wall_s']:>8} {r['cpu_s']:>7} {r['jobs']:>5} "
              f"{r['placement_jobs']:>15} {r['placements']:>10} {r['write_commands']:>10} "
              f"{r['all_commands']:>9}")
    print("per-pair / batched:", result["ratios_per_pair_over_batched"])
    print("documents written:", {name: r["documents_written"] for name, r in runs.items()})
    print("commands:", {name: r["commands"] for name, r in runs.items()})
    print("same documents:", result["same_documents"])
    print("machine:", result["machine"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
