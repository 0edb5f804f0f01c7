"""OC20 relaxation trajectories (RPBE, VASP): forces, relative and relaxation energies.

Twenty ASE trajectories of adsorbates on intermetallic and compound surfaces, with
DFT energies, forces and FixAtoms on the subsurface atoms. The reference functional
is RPBE: a PBE-trained model's absolute energies are offset from it, so energies are
compared relative to each trajectory's first frame. Forces are compared on the free
atoms only, next to the error of predicting zero force (most frames are near
convergence, so that baseline is small: ~0.09 eV/A).
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from omni_flows.db_schemas import BenchmarkEntry
from omni_flows.workflows.structures.geometry import free_mask

from .results import BenchmarkInputError, data_folder

DATASET = "oc20_relaxations"
REFERENCE_FUNCTIONAL = "RPBE"
DEFAULT_STRIDE = 1  # every frame


def frame_indices(n_frames: int, stride: int = DEFAULT_STRIDE,
                  limit_frames: int | None = None) -> list[int]:
    """Every ``stride``-th frame, then at most ``limit_frames`` of them evenly spread;
    the first and last frames are always kept (they define the relaxation energy)."""
    if stride < 1 or (limit_frames is not None and limit_frames < 2):
        raise BenchmarkInputError("--stride must be >= 1 and --limit-frames >= 2")
    picked = sorted(set(range(0, n_frames, stride)) | {n_frames - 1})
    if limit_frames is not None and len(picked) > limit_frames:
        spread = np.linspace(0, len(picked) - 1, limit_frames).round().astype(int)
        picked = [picked[i] for i in sorted(set(spread))]
    return picked


def load_trajectories(data_dir: Path | None, names: list[str] | None = None,
                      stride: int = DEFAULT_STRIDE,
                      limit_frames: int | None = None) -> dict[str, list[Atoms]]:
    """name -> selected frames (with their DFT energy and forces; ``info["frame"]`` their
    number), in trajectory order."""
    folder = data_folder(data_dir, DATASET)
    paths = sorted(folder.glob("*.traj"))
    if names:
        paths = [p for p in paths if p.stem in names]
        missing = sorted(set(names) - {p.stem for p in paths})
        if missing:
            raise BenchmarkInputError(f"no trajectories {', '.join(missing)} in {folder}")
    if not paths:
        raise BenchmarkInputError(f"no .traj files in {folder}: pass the {DATASET} folder with --data")
    selected = {}
    for path in paths:
        frames = read(path, ":")
        picked = frame_indices(len(frames), stride, limit_frames)
        for i in picked:
            frames[i].info["frame"] = i  # its number in the trajectory, for the entries
        selected[path.stem] = [frames[i] for i in picked]
    return selected


def run_oc20(
    model: str,
    task: str | None,
    data_dir: Path | None = None,
    *,
    stride: int = DEFAULT_STRIDE,
    limit_frames: int | None = None,
    trajectories: list[str] | None = None,
    device: str = "auto",
) -> tuple[dict, list[BenchmarkEntry]]:
    """Metrics (eV, eV/A) and one entry per frame after the first (system_id
    ``trajectory/frame_number``: the energy relative to the first frame, eV)."""
    from omni_flows.model.inference import predict
    from omni_flows.workflows.relax import get_calculator

    selected = load_trajectories(data_dir, trajectories, stride, limit_frames)
    calc = get_calculator(model, task, device)
    frames = [f for fs in selected.values() for f in fs]
    results = iter(predict(frames, calc.model, task, stress=False))

    force_errors, dft_forces, relative, relaxation, entries = [], [], [], [], []
    for name, traj in selected.items():
        e_dft = np.array([f.get_potential_energy() for f in traj])
        e_model = np.empty(len(traj))
        for i, atoms in enumerate(traj):
            r = next(results)
            e_model[i] = r["energy"]
            free = free_mask(atoms)
            force_errors.append(np.abs(r["forces"][free] - atoms.get_forces()[free]).ravel())
            dft_forces.append(np.abs(atoms.get_forces()[free]).ravel())
        rel_dft, rel_model = e_dft - e_dft[0], e_model - e_model[0]
        relative += list(np.abs(rel_model[1:] - rel_dft[1:]))
        relaxation.append(rel_model[-1] - rel_dft[-1])
        entries += [BenchmarkEntry(system_id=f"{name}/{traj[i].info['frame']}",
                                   reference=float(rel_dft[i]), predicted=float(rel_model[i]))
                    for i in range(1, len(traj))]
    relaxation = np.array(relaxation)
    metrics = {
        "force_mae": float(np.concatenate(force_errors).mean()),
        "force_mae_zero_force_baseline": float(np.concatenate(dft_forces).mean()),
        "relative_energy_mae": float(np.mean(relative)),
        "relaxation_energy_mae": float(np.abs(relaxation).mean()),
        "relaxation_energy_mean_error": float(relaxation.mean()),
        "reference_functional": REFERENCE_FUNCTIONAL,
        "n_trajectories": len(selected),
        "n_frames": len(frames),
    }
    return metrics, entries
