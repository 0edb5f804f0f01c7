"""What uncertainty costs a screen: the same small surface screen with and without it, wall
time, measured in the same run (issue 27's goal: at most 1.5x).

    OMP_NUM_THREADS=1 python benchmarks/bench_uncertainty_screen.py [--supercell 3] [--layers 3]
        [--adsorbates O H OH] [--max-placements 4] [--repeat 1]

The screen: Pt(111), the adsorbates on a ``--supercell`` x ``--supercell`` cell of
``--layers`` layers (bottom one fixed), at most ``--max-placements`` placements each,
omni-ads-0's gpaw_rpbe task with a committee of 4 added (untrained: the cost does not
depend on the members' values), fmax 0.05. Each run screens into a fresh database of a
private local server, so both relax everything (uncertainty on would otherwise reuse the
stored relaxations and cost only its committee pass). The model is loaded once before
any timing. With uncertainty the adsorption-energy job of each (slab, adsorbate) adds one
batched energy-only pass of the members over its final geometries, clean slab and gas
molecules. Each figure is the fastest of ``--repeat`` runs; the runs alternate. Beside
wall time, this process's CPU time (the database server's is not in it): on a shared
machine it moves less with the other load than wall time does. And the committee passes'
own CPU time in the runs with uncertainty: (screen without + passes) / screen without is
the ratio the passes alone make, the least noisy of the three.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from omni_flows.engines.local import run_local
from omni_flows.model import load_model, save_checkpoint
from omni_flows.server import start_server, stop_server
from omni_flows.settings import Settings
from omni_flows.stores import job_store
import omni_flows.workflows.flows.uncertainty as uncertainty_module
from omni_flows.workflows import MLIPSettings, PlacementSettings, SlabSpec, SurfaceCampaign
from omni_flows.workflows.relax import get_calculator

TASK = "gpaw_rpbe"
PASSES: list[float] = []  # CPU s of each committee pass of the current run


def time_committee_passes() -> None:
    """Record each committee pass's CPU time in PASSES (the adsorption-energy jobs call
    the pass through the uncertainty module)."""
    original = uncertainty_module.committee_energies

    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            PASSES.append(time.process_time() - start)

    uncertainty_module.committee_energies = timed


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def screen(args, checkpoint: Path, uncertainty: bool, settings: Settings) -> tuple[float, float]:
    """Wall and CPU time (s) of the screen into ``settings``' database."""
    campaign = SurfaceCampaign(
        bulks=["Pt"], facets=["111"], adsorbates=args.adsorbates,
        mlip=MLIPSettings(model=str(checkpoint), task=TASK, device="cpu"),
        slab_spec=SlabSpec(n_layers=args.layers, n_fixed_layers=1,
                           supercell=(args.supercell, args.supercell)),
        placements=PlacementSettings(max_placements=args.max_placements),
        uncertainty=uncertainty)
    start, cpu = time.perf_counter(), time.process_time()
    run_local(campaign.make(), settings=settings, store=job_store(settings),
              raise_immediately=True)
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supercell", type=int, default=3)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--adsorbates", nargs="+", default=["O", "H", "OH"])
    parser.add_argument("--max-placements", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    time_committee_passes()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = load_model("omni-ads-0")
        model.add_committee(TASK, 4)
        checkpoint = tmp / "omni-ads-0-committee.safetensors"
        save_checkpoint(model, checkpoint)
        get_calculator(MLIPSettings(model=str(checkpoint), task=TASK, device="cpu"))  # loaded
        server = Settings(home=tmp / "home", mongodb_uri=None, db_port=free_port())
        start_server(server)
        times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        passes: dict[bool, list[float]] = {}
        try:
            for i in range(args.repeat):
                for uncertainty in (False, True):
                    db = server.model_copy(update={"database": f"bench_{int(uncertainty)}_{i}"})
                    PASSES.clear()
                    times[uncertainty].append(screen(args, checkpoint, uncertainty, db))
                    passes.setdefault(uncertainty, []).append(sum(PASSES))
                    wall, cpu = times[uncertainty][-1]
                    print(f"run {i + 1}, uncertainty {'on ' if uncertainty else 'off'}: "
                          f"{wall:.1f} s wall, {cpu:.1f} s CPU, committee passes "
                          f"{passes[uncertainty][-1]:.2f} s CPU", flush=True)
        finally:
            stop_server(server)
    print(f"Pt(111) {args.supercell}x{args.supercell}x{args.layers}, "
          f"{' '.join(args.adsorbates)}, <= {args.max_placements} placements each")
    for k, what in enumerate(("wall", "CPU")):
        off, on = (min(t[k] for t in times[u]) for u in (False, True))
        print(f"{what} time without uncertainty {off:.1f} s, with {on:.1f} s: ratio "
              f"{on / off:.3f} (goal <= 1.5)")
    off, extra = min(t[1] for t in times[False]), min(passes[True])
    print(f"committee passes {extra:.2f} s CPU over {off:.1f} s CPU without: ratio "
          f"{(off + extra) / off:.3f}")


if __name__ == "__main__":
    main()
