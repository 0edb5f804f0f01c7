"""A real committee: the gpaw_rpbe task of omni-ads-0 or omni-ads-1, K = 4 members, and its
calibration on held-out GPAW RPBE adsorption energies, against the latent-distance alternative.

    OMP_NUM_THREADS=1 python benchmarks/train_committee.py [--steps 30] [--adapter-rank 4]
        [--json benchmarks/results/committee_calibration.json] [--out PATH]
    OMP_NUM_THREADS=1 python benchmarks/train_committee.py --model omni-ads-1 --steps 150 \
        --checkpoint train_out/omni-ads-1/model.safetensors --lr 5e-3 \
        --json benchmarks/results/committee_calibration_omni_ads_1.json --out PATH \
        [--reliability benchmarks/results/committee_reliability_omni_ads_1.png]
    OMP_NUM_THREADS=1 python benchmarks/train_committee.py --model omni-ads-1 --evaluate \
        --json FILE --reliability PNG   # the shipped committee, measured again (1 min)

Training needs a model without a committee (for omni-ads-1: the recipe's output, given as
``--checkpoint train_out/omni-ads-1/model.safetensors``);
``--evaluate`` measures the one a checkpoint has, with its stored scale.

omni-ads-1 (its split, recipes/omni_ads_1_data.py): members on its training rows (pure metals
but Au/Cu/Re, their clean slabs, the gas molecules, the last frames of quinary slabs 0000/0001
and HEA slab 0000 trajectories), total energies, as the task was trained; calibration split:
HEA slab 0001 and the metals Au/Cu/Re (H*, O*, OH*, CO*, NO*), never trained on; test: quinary
slab 0002 (18 O*/OH*), the kind of site the independent check measures.

1. Members: ``train_committee`` on bootstrap resamples of omni-ads-0's own gpaw_rpbe training
   data (recipes/omni-ads-0.yaml: CHEAT pure-metal rows without Au/Cu/Re, the clean slabs,
   HEA slab 0000's trajectories every 3rd frame), energy only, as omni-ads-0 was trained.
2. Adsorption energies at the DFT final geometries (no MLIP relaxation: the error is the
   model's, not the optimizer's), each member's own E(slab+X) - E(slab) - refs with refs
   from the member's own H2, H2O: O* = H2O - H2, OH* = H2O - H2/2, H* = H2/2.
3. Calibration split: quinary slabs 0000 and 0001 (36 O*/OH*, never trained on by omni-ads-0
   or the members); one scale fitted there (95 % of |error| within 2 s sigma). Held-out
   test: quinary slab 0002 (18) and HEA slab 0001 (6 O*/H*/OH*), the held-out sets of
   omni-ads-1 (recipes/omni_ads_1_data.py).
4. The alternative: LatentDistance (max atom feature distance to the training atoms),
   mapped to eV by the same quantile rule on the calibration split.

Prints and writes a JSON of the share of |error| within 2 sigma and Spearman(sigma, |error|)
per adsorbate and split, for both; the calibrated checkpoint goes to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db import connect
from ase.io import read

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "recipes"))
from omni_ads_0_data import HELD_OUT_METALS, clean_slab_energies, gas_references  # noqa: E402

from omni_flows.model import load_model, predict, save_checkpoint  # noqa: E402
from omni_flows.model.committee import calibration, fit_scale, reliability, spread  # noqa: E402
from omni_flows.model.latent_distance import LatentDistance  # noqa: E402
from omni_flows.model.train.committee import train_committee  # noqa: E402

TASK = "gpaw_rpbe"
HEA = ROOT.parent / "shared" / "data" / "hea_gpaw_rpbe"
# HEA example adsorbate files: O (fcc) ads0-1, H (fcc) ads2-3, OH (ontop) ads4-5
HEA_ADS = {"ads0": "O", "ads1": "O", "ads2": "H", "ads3": "H", "ads4": "OH", "ads5": "OH"}
GAS = {"O": {"h2o": 1, "h2": -1}, "OH": {"h2o": 1, "h2": -0.5}, "H": {"h2": 0.5},
       "CO": {"co": 1}, "NO": {"no": 1}}


def training_data() -> list:
    rows = [r.toatoms() for r in connect(HEA / "pure_metals.db").select()
            if r.element not in HELD_OUT_METALS]
    slabs = [a for a in read(ROOT / "recipes" / "omni-ads-0" / "clean_slabs.extxyz", ":")
             if a.get_chemical_symbols()[0] not in HELD_OUT_METALS]
    frames = [a for p in sorted((HEA / "hea_example" / "traj").glob("example_project_0000_*"))
              for a in read(p, "::3")]
    return rows + slabs + frames


def adsorption_sets() -> dict[str, list[tuple[str, str, str]]]:
    """split -> (adsorbate, adsorbate+slab trajectory, slab trajectory)."""
    q, h = HEA / "hea_quinary" / "traj", HEA / "hea_example" / "traj"

    def quinary(s: int):
        slab = q / f"agirpdptru_{s:04d}_slab.traj"
        return [(ads, str(p), str(slab)) for ads, pat in (("O", "fcc_O"), ("OH", "ontop_OH"))
                for p in sorted(q.glob(f"agirpdptru_{s:04d}_{pat}_*.traj"))]

    hea = [(ads, str(h / f"example_project_0001_{f}.traj"), str(h / "example_project_0001_slab.traj"))
           for f, ads in HEA_ADS.items()]
    return {"calibration": quinary(0) + quinary(1), "test_quinary_0002": quinary(2),
            "test_hea_0001": hea}


def training_data_omni_ads_1() -> list:
    """omni-ads-1's gpaw_rpbe training rows (its held-out sets left out), energies."""
    rows = [r.toatoms() for r in connect(HEA / "pure_metals.db").select()
            if r.element not in HELD_OUT_METALS]
    slabs = read(ROOT / "recipes" / "omni-ads-1" / "clean_slabs.extxyz", ":")
    gas = [read(HEA / "gas" / f"{g}.traj", -1) for g in ("h2", "h2o", "co", "no")]
    q, h = HEA / "hea_quinary" / "traj", HEA / "hea_example" / "traj"
    trajs = sorted(q.glob("agirpdptru_000[01]_*.traj")) + sorted(h.glob("example_project_0000_*"))
    return rows + slabs + gas + [read(p, -1) for p in trajs]


def adsorption_sets_omni_ads_1(tmp: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Calibration: HEA slab 0001 and the pure metals Au, Cu, Re (their rows and clean slabs,
    written to ``tmp`` as one-frame files); test: quinary slab 0002."""
    sets = adsorption_sets()
    slabs = clean_slab_energies(HEA / "pure_metals.db", gas_references(HEA / "gas"))
    metals = []
    for r in connect(HEA / "pure_metals.db").select():
        if r.element in HELD_OUT_METALS:
            row, slab = tmp / f"{r.element}_{r.ads}.extxyz", tmp / f"{r.element}_slab.extxyz"
            r.toatoms().write(row)
            if not slab.exists():
                s = slabs[r.element][1].copy()
                s.calc = SinglePointCalculator(s, energy=slabs[r.element][0])
                s.write(slab)
            metals.append((r.ads, str(row), str(slab)))
    return {"calibration": sets["test_hea_0001"] + metals,
            "test_quinary_0002": sets["test_quinary_0002"]}


def member_adsorption_energies(model, sets):
    """split -> (adsorbates, DFT E_ads, model E_ads, members' E_ads (n, K), latent score)."""
    files = sorted({f for rows in sets.values() for _, a, s in rows for f in (a, s)})
    gas = {g: read(HEA / "gas" / f"{g}.traj", -1) for g in ("h2", "h2o", "co", "no")}
    structures = [read(f, -1) for f in files] + list(gas.values())
    t = time.perf_counter()
    results = predict(structures, model, task=TASK, committee=True, stress=False)
    seconds = time.perf_counter() - t
    dft = {f: a.get_potential_energy() for f, a in zip(files + list(gas), structures)}
    main = {f: r["energy"] for f, r in zip(files + list(gas), results)}
    members = {f: np.array(r["committee_energies"]) for f, r in zip(files + list(gas), results)}

    def e_ads(table, ads, a, s):
        return table[a] - table[s] - sum(n * table[g] for g, n in GAS[ads].items())

    out = {}
    for split, rows in sets.items():
        out[split] = (
            [ads for ads, _, _ in rows],
            np.array([e_ads(dft, *r) for r in rows]),
            np.array([e_ads(main, *r) for r in rows]),
            np.array([e_ads(members, *r) for r in rows]),
            [r[1] for r in rows],
        )
    return out, seconds, len(structures)


def reliability_png(values: dict, scale: float, path: Path, title: str) -> None:
    """Observed share of |error| <= z sigma against the Gaussian's share, per split and
    adsorbate (O*, OH* and all): on the diagonal, sigma is calibrated; above, too wide."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.6", lw=1)
    for split, (ads, dft, main_e, mem, _) in values.items():
        err, sigma = main_e - dft, scale * spread(mem)
        for name in ("all", "O", "OH"):
            pick = np.array([name in ("all", a) for a in ads])
            expected, observed = reliability(err[pick], sigma[pick])
            ax.plot(expected, observed, marker="o", ms=3,
                    label=f"{split} {name}* (n={pick.sum()})".replace("all*", "all"))
    ax.set_xlabel("expected share within z sigma (Gaussian)")
    ax.set_ylabel("observed share")
    ax.set_title(f"{title} gpaw_rpbe committee (s = {scale:.2f})", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    print(f"reliability diagram: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="omni-ads-0", choices=("omni-ads-0", "omni-ads-1"))
    parser.add_argument("--checkpoint", default=None,
                        help="the weights to use instead of the packaged model's (for omni-ads-1: "
                             "the recipe's output, train_out/omni-ads-1/model.safetensors); "
                             "--model still picks the data split")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--adapter-rank", type=int, default=0,
                        help="give every task adapters of this rank first (B = 0: omni-ads-0's "
                             "numbers unchanged), so that members differ in adapters too")
    parser.add_argument("--out", default="/tmp/omni-ads-0-committee.safetensors")
    parser.add_argument("--evaluate", action="store_true",
                        help="measure the committee the model already has (its stored scale), "
                             "train nothing")
    parser.add_argument("--reliability", type=Path, default=None,
                        help="also draw the reliability diagram of every split (PNG)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "committee_calibration.json"))
    args = parser.parse_args()

    model = load_model(args.checkpoint or args.model)
    if args.adapter_rank:
        model.add_adapters(args.adapter_rank)
    ads1 = args.model == "omni-ads-1"
    data = training_data_omni_ads_1() if ads1 else training_data()
    has_committee = TASK in model.config.committees
    if has_committee != args.evaluate:
        raise SystemExit(f"error: {args.model} has {'a' if has_committee else 'no'} committee on "
                         f"{TASK}: {'use --evaluate' if has_committee else 'train one first'}")
    t, train_s = time.perf_counter(), 0.0
    if not args.evaluate:
        log = train_committee(model, TASK, data, size=args.size, steps=args.steps, lr=args.lr,
                              energy_per_atom=not ads1)
        train_s = time.perf_counter() - t
        print(f"trained {log['members']} on {len(data)} structures, {args.steps} steps in "
              f"{train_s:.0f} s; loss {log['losses'][0]:.4g} -> {np.mean(log['losses'][-5:]):.4g}")

    tmp = Path(tempfile.mkdtemp())
    sets = adsorption_sets_omni_ads_1(tmp) if ads1 else adsorption_sets()
    values, predict_s, n = member_adsorption_energies(model, sets)
    t = time.perf_counter()
    latent = LatentDistance(model, TASK, data)
    files = {f for rows in sets.values() for _, f, _ in rows}
    score = dict(zip(sorted(files), latent.score([read(f, -1) for f in sorted(files)])))
    latent_s = time.perf_counter() - t

    _, dft_c, main_c, mem_c, files_c = values["calibration"]
    raw_c = spread(mem_c)
    scale = (model.committee(TASK).scale if args.evaluate  # the stored one, not refitted
             else fit_scale(main_c - dft_c, raw_c))
    latent_scale = fit_scale(main_c - dft_c, [score[f] for f in files_c])
    model.set_committee_scale(TASK, scale)
    report = {"model": args.model, "checkpoint": args.checkpoint, "steps": args.steps,
              "size": args.size, "lr": args.lr,
              "adapter_rank": args.adapter_rank, "train_seconds": train_s,
              "training_structures": len(data), "predict_committee_seconds": predict_s,
              "predicted_structures": n, "latent_seconds": latent_s,
              "scale": scale, "latent_scale_eV_per_unit": latent_scale, "splits": {}}
    for split, (ads, dft, main_e, mem, files_s) in values.items():
        err = main_e - dft
        sigma = scale * spread(mem)
        lat = latent_scale * np.array([score[f] for f in files_s])
        rows = {}
        for name in ["all"] + sorted(set(ads)):
            pick = np.array([name in ("all", a) for a in ads])
            if pick.sum() < 3:
                continue
            rows[name] = {
                "committee": calibration(err[pick], sigma[pick]),
                "committee_raw_sigma_mean": float(spread(mem[pick]).mean()),
                "latent": calibration(err[pick], lat[pick]),
                "member_mean_minus_model_eV": float(np.mean(mem[pick].mean(1) - main_e[pick])),
            }
        report["splits"][split] = rows
    if args.reliability:
        reliability_png(values, scale, args.reliability, args.model)
    if not args.evaluate:
        save_checkpoint(model, args.out, extra={"committee": f"benchmarks/train_committee.py --model "
                                                             f"{args.model} --steps {args.steps}"})
    print(json.dumps(report, indent=1))
    Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
