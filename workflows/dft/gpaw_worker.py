"""One GPAW single point, run as its own process (GPAW is GPL-3: never imported by the library).

Usage: ``python gpaw_worker.py INPUT.json OUTPUT.json`` (the file is run as a
script, not imported: it needs only the standard library, numpy, ASE and GPAW).

INPUT.json::

    {"numbers": [...], "positions": [[x, y, z], ...] (A), "cell": 3x3 (A),
     "pbc": [bool, bool, bool], "magmoms": [...] or null,
     "parameters": {GPAW keyword arguments, JSON}, "txt": "gpaw.txt" or null}

OUTPUT.json: ``energy`` (eV, GPAW's energy extrapolated to zero smearing, what
``get_potential_energy`` returns), ``free_energy`` (eV), ``forces`` (eV/A),
``magmom`` and ``magmoms``, ``nelectrons``, ``n_ibz_kpoints``, ``iterations``,
``wall_s``, ``versions`` (gpaw, gpaw-data, ase, numpy, libxc) and ``setups``
(per element: the setup file's name and its fingerprint). On failure OUTPUT.json
holds ``{"error": "..."}`` and the exit status is 3.
"""

import json
import sys
import time
import traceback
from importlib.metadata import PackageNotFoundError, version


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _setups(calc) -> dict:
    """Per element: the PAW setup file and its fingerprint (md5 of the file)."""
    found = {}
    for setup in calc.setups:
        symbol = setup.symbol
        if symbol in found:
            continue
        data = getattr(setup, "data", setup)
        found[symbol] = {
            "fingerprint": getattr(data, "fingerprint", None) or getattr(setup, "fingerprint", None),
            "file": str(getattr(data, "filename", "") or ""),
            "valence": float(setup.Nv),
        }
    return found


def _iterations(calc) -> int | None:
    for owner in (getattr(calc, "dft", None), getattr(calc, "scf", None), calc):
        for name in ("niter", "iterations"):
            value = getattr(getattr(owner, "scf_loop", owner), name, None)
            if isinstance(value, int):
                return value
    return None


def run(request: dict) -> dict:
    import numpy as np
    from ase import Atoms

    import gpaw
    from gpaw import GPAW

    atoms = Atoms(numbers=request["numbers"], positions=request["positions"],
                  cell=request["cell"], pbc=request["pbc"])
    if request.get("magmoms") is not None:
        atoms.set_initial_magnetic_moments(request["magmoms"])
    start = time.perf_counter()
    calc = GPAW(**request["parameters"], txt=request.get("txt"))
    atoms.calc = calc
    energy = float(atoms.get_potential_energy())
    forces = atoms.get_forces()
    free_energy = float(atoms.get_potential_energy(force_consistent=True))
    try:
        magmom = float(calc.get_magnetic_moment())
        magmoms = calc.get_magnetic_moments().tolist()
    except Exception:  # spin-paired: no moments
        magmom, magmoms = 0.0, [0.0] * len(atoms)
    libxc = None
    try:
        import _gpaw

        libxc = getattr(_gpaw, "libxc_version", None)
    except ImportError:
        pass
    return {
        "energy": energy,
        "free_energy": free_energy,
        "forces": np.asarray(forces).tolist(),
        "magmom": magmom,
        "magmoms": list(magmoms),
        "nelectrons": float(calc.get_number_of_electrons()),
        "n_ibz_kpoints": int(len(calc.get_ibz_k_points())),
        "iterations": _iterations(calc),
        "wall_s": time.perf_counter() - start,
        "versions": {"gpaw": gpaw.__version__, "gpaw-data": _version("gpaw-data"),
                     "ase": _version("ase"), "numpy": np.__version__, "libxc": libxc},
        "setups": _setups(calc),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = argv
    with open(source) as f:
        request = json.load(f)
    try:
        result, status = run(request), 0
    except Exception as exc:  # reported to the caller through the output file
        result = {"error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc()[-4000:]}
        status = 3
    with open(target, "w") as f:
        json.dump(result, f)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
