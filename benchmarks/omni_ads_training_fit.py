"""How well a model fits the CHEAT pure-metal rows: adsorption energies relative to Pt(111).

    python benchmarks/omni_ads_training_fit.py omni-ads-0:gpaw_rpbe 7net-mf-0:PBE

For every metal M and adsorbate X of ``hea_gpaw_rpbe/pure_metals.db``, the error of
[E(M+X) - E(M)] - [E(Pt+X) - E(Pt)] against CHEAT's e(M, X) - e(Pt, X) (gas references
cancel). The clean slab is the H row's slab without H. MAE over training metals and over
the held-out ones (Au, Cu, Re) separately, then each metal's error.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from ase.db import connect

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
HEA = ROOT.parent / "shared" / "data" / "hea_gpaw_rpbe"
sys.path.insert(0, str(ROOT / "recipes"))
from omni_ads_0_data import HELD_OUT_METALS, clean_slab_energies, gas_references  # noqa: E402


def main(specs: list[str]) -> None:
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator

    slabs = clean_slab_energies(HEA / "pure_metals.db", gas_references(HEA / "gas"))
    metals = sorted(slabs)
    rows = list(connect(HEA / "pure_metals.db").select())
    structures = [r.toatoms() for r in rows] + [slabs[m][1] for m in metals]
    for spec in specs:
        name, _, task = spec.partition(":")
        calc = get_calculator(name, task or None, "cpu")
        e = [x["energy"] for x in predict(structures, calc.model, task or None, stress=False)]
        slab_e = dict(zip(metals, e[len(rows):]))
        binding = {(r.element, r.ads): (en - slab_e[r.element], r.e) for r, en in zip(rows, e)}
        print(spec)
        for ads in ("O", "OH", "H", "CO", "NO"):
            err = {m: (binding[m, ads][0] - binding["Pt", ads][0])
                   - (binding[m, ads][1] - binding["Pt", ads][1]) for m in metals if m != "Pt"}
            train = np.mean([abs(v) for m, v in err.items() if m not in HELD_OUT_METALS])
            held = np.mean([abs(v) for m, v in err.items() if m in HELD_OUT_METALS])
            print(f"  {ads:3s} MAE training metals {train:.3f}  held-out {held:.3f}  "
                  + " ".join(f"{m}:{v:+.2f}" for m, v in err.items()))


if __name__ == "__main__":
    main(sys.argv[1:] or ["omni-ads-0:gpaw_rpbe", "7net-mf-0:PBE"])
