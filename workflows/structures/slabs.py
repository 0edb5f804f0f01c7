"""Slabs cut from a bulk with pymatgen's SlabGenerator: trimmed, bottom layers fixed, tiled.

The slab sits at the bottom of its cell with vacuum above; adsorbates go on top.

The rules (SlabSpec defaults; :func:`slab_geometry` measures a slab against them):

- thickness: the top ``n_layers = 4`` atomic layers (atoms within LAYER_TOLERANCE = 0.5 A
  in height are one layer), the bottom ``n_fixed_layers = 2`` held at the relaxed bulk's
  positions: the 4-layer, 2-fixed fcc(111) slab of adsorption studies (Xu & Kitchin 2014,
  the shared DFT data). It is also meant to be at least ``min_slab_size = 7`` A thick
  (layers x spacing); open and stepped facets have closer layers, so 4 layers of Pt(110)
  are 5.5 A and of Pt(211) only 3.2 A (one terrace): :func:`make_slab` warns and names
  the --layers that reach 7 A.
- vacuum: the cell is cut with ``min_vacuum_size = 12`` A above the slab and trimming only
  adds to it (20-33 A on Pt(111), (100), (110), (211)): a slab and an adsorbate 2-3 A tall
  stay > 9 A from the next slab's bottom, beyond the MLIP's cutoff (5 A for SevenNet)
  and where a metal's electron density has decayed (DFT).
- lateral size: a and b tiled to at least ``min_lateral = 8`` A (or ``supercell``), so an
  adsorbate is ~8 A from its periodic images (0.11 ML on fcc(111) 3x3). Tiling looks at
  |a| and |b| only: :func:`make_slab` warns where an oblique cell brings an image closer
  (a + b of Pt(211) 3x1: 7.3 A).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from monty.json import MSONable
from pymatgen.core import Structure
from pymatgen.core.surface import SlabGenerator
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from ..errors import FacetError, WorkflowInputError

# A: atoms closer than this in height belong to one layer (fcc(111) layers are ~2.3 A apart)
LAYER_TOLERANCE = 0.5
# A: the minimum lateral cell size, so an adsorbate does not see its image within ~8 A
MIN_LATERAL = 8.0


@dataclass(frozen=True)
class SlabSpec(MSONable):
    """How slabs are cut: frozen data, checked when made (a slab with every atom fixed,
    no vacuum or no layer is refused before any relaxation). The physical rules behind
    the defaults are in the module's docstring."""

    min_slab_size: float = 7.0  # A, before trimming to n_layers
    min_vacuum_size: float = 12.0  # A
    n_layers: int | None = 4  # keep the top n layers; None keeps what SlabGenerator made
    n_fixed_layers: int = 2  # bottom layers held at bulk positions
    min_lateral: float = MIN_LATERAL  # A, tile a and b at least to this
    # explicit (na, nb) instead of min_lateral; text 'NxM' (the command line's) reads too
    supercell: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.supercell, str):
            object.__setattr__(self, "supercell", _supercell(self.supercell))
        if self.supercell is not None:
            object.__setattr__(self, "supercell", tuple(int(i) for i in self.supercell))
            if len(self.supercell) != 2 or min(self.supercell) < 1:
                raise WorkflowInputError(f"supercell {self.supercell}: give two positive "
                                         "integers, e.g. 2x2")
        if self.n_layers is not None and self.n_layers < 1:
            raise WorkflowInputError(f"--layers must be at least 1, not {self.n_layers}")
        if self.n_fixed_layers < 0:
            raise WorkflowInputError(f"--fixed-layers must be 0 or more, not "
                                     f"{self.n_fixed_layers}")
        if self.n_layers is not None and self.n_fixed_layers >= self.n_layers:
            raise WorkflowInputError(
                f"--fixed-layers {self.n_fixed_layers} with --layers {self.n_layers} fixes every "
                "atom of the slab: nothing could relax. Fix fewer layers than the slab has "
                "(e.g. --layers 4 --fixed-layers 2)")
        for name in ("min_slab_size", "min_vacuum_size", "min_lateral"):
            if not getattr(self, name) > 0:
                raise WorkflowInputError(f"{name} must be > 0 A, not {getattr(self, name)}")


def _supercell(text: str) -> tuple[int, ...]:
    """'2x2' -> (2, 2)."""
    try:
        return tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        raise WorkflowInputError(f"--supercell {text!r}: write NxM, e.g. 2x2") from None


# A: atoms closer than this are a broken structure file, not a crystal (H2 bonds are 0.74 A)
MIN_DISTANCE = 0.5


def bulk_structure(spec: str | Structure) -> Structure:
    """A bulk from an element symbol (ASE's reference crystal), a file, or a Structure;
    a missing or unreadable file, or one with overlapping atoms, is refused in our words."""
    if isinstance(spec, Structure):
        return _checked(spec, "the bulk structure")
    if Path(spec).is_file():
        import warnings

        try:
            with warnings.catch_warnings():  # pymatgen's CIF notes: the checks below say more
                warnings.simplefilter("ignore")
                structure = Structure.from_file(spec)
        except Exception as exc:
            raise WorkflowInputError(_unreadable_bulk(spec, exc)) from None
        return _checked(structure, spec)
    if Path(spec).suffix or "/" in spec:
        raise WorkflowInputError(f"bulk file {spec} not found: give an existing structure file "
                                 "(CIF, POSCAR) or an element symbol (Pt, Cu)")
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    try:
        atoms = bulk(spec, cubic=True)
    except Exception:
        try:
            atoms = bulk(spec)
        except Exception:
            raise WorkflowInputError(
                f"cannot build a bulk for {spec!r}: give an element with a reference crystal "
                "in ASE (Pt, Cu, Fe, ...) or a structure file (CIF, POSCAR)"
            ) from None
    return AseAtomsAdaptor.get_structure(atoms)


def _unreadable_bulk(path: str, exc: Exception) -> str:
    """Why pymatgen cannot read ``path``: a molecule without a cell (an .xyz, say) is the
    common case, and pymatgen calls it an unrecognized extension."""
    try:
        from ase.io import read

        atoms = read(path)
    except Exception:
        return f"cannot read bulk structure {path}: {exc}"
    if not atoms.pbc.any() or atoms.cell.volume < 1e-3:
        return (f"bulk file {path} holds {len(atoms)} atoms without a periodic cell (a "
                "molecule?): a bulk needs its crystal cell; give a CIF or POSCAR, or use it "
                "as an adsorbate (--adsorbates FILE:INDEX)")
    return f"cannot read bulk structure {path}: {exc}"


def _checked(structure: Structure, what) -> Structure:
    if len(structure) == 0:
        raise WorkflowInputError(f"{what} holds no atoms")
    if structure.lattice.volume < 1e-3:
        raise WorkflowInputError(f"{what} has no cell (volume {structure.lattice.volume:.3g} A^3)")
    if len(structure) > 1:
        d = structure.distance_matrix + np.eye(len(structure)) * 1e9
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] < MIN_DISTANCE:
            raise WorkflowInputError(
                f"{what}: atoms {d[i, j]:.2f} A apart (sites {i} {structure[i].species_string} "
                f"and {j} {structure[j].species_string}); a crystal has none closer than "
                f"{MIN_DISTANCE} A. Fix the file (duplicate or disordered sites?)")
    return structure


def layers(z: np.ndarray, tol: float = LAYER_TOLERANCE) -> list[np.ndarray]:
    """Atom indices per layer, bottom first."""
    order = np.argsort(z)
    groups, current = [], [order[0]]
    for i in order[1:]:
        if z[i] - z[current[-1]] > tol:
            groups.append(np.array(current))
            current = []
        current.append(i)
    groups.append(np.array(current))
    return groups


def _generator(bulk: Structure, miller: tuple[int, int, int], spec: SlabSpec) -> SlabGenerator:
    if len(miller) != 3 or not any(miller):
        raise FacetError(f"Miller index {miller} is not a plane: give three integers, not all 0")
    conventional = SpacegroupAnalyzer(bulk).get_conventional_standard_structure()
    thickness = spec.min_slab_size
    if spec.n_layers:  # enough material to keep n_layers after trimming
        thickness = max(thickness, (spec.n_layers + 1) * conventional.lattice.d_hkl(miller))
    return SlabGenerator(
        conventional, miller, thickness, spec.min_vacuum_size, center_slab=False,
        primitive=True, max_normal_search=max(abs(i) for i in miller) + 1,
    )


def _cuts(bulk: Structure, miller: tuple[int, int, int], spec: SlabSpec) -> tuple[list, list]:
    """pymatgen's distinct slabs of a facet and every cut (one SlabGenerator)."""
    try:
        generator = _generator(bulk, miller, spec)
        return generator.get_slabs(), generator.get_slabs(filter_out_sym_slabs=False)
    except FacetError:
        raise
    except Exception as exc:
        raise FacetError(f"{bulk.composition.reduced_formula} cannot make a {miller} slab: {exc}")


def facet_slabs(bulk: Structure, miller: tuple[int, int, int], spec: SlabSpec,
                first_only: bool = False) -> dict[float, tuple[Structure, list[int]]]:
    """``{shift: (slab, fixed)}`` of the distinct top terminations (:func:`terminations`),
    each slab as :func:`make_slab` cuts it; ``first_only``: pymatgen's first alone. One
    SlabGenerator for the facet (a screen's plan cuts each slab once)."""
    slabs, every = _cuts(bulk, miller, spec)
    shifts = _top_terminations(bulk, miller, slabs, every)
    return {shift: _finish(_closest(every, shift), miller, spec)
            for shift in shifts[:1 if first_only else None]}


def terminations(bulk: Structure, miller: tuple[int, int, int], spec: SlabSpec) -> list[float]:
    """Shifts of the distinct top terminations, pymatgen's first; raises
    :class:`FacetError` where there is none."""
    return _top_terminations(bulk, miller, *_cuts(bulk, miller, spec))


def _top_terminations(bulk: Structure, miller, slabs: list, every: list) -> list[float]:
    """pymatgen counts a slab and its upside-down copy as one slab, but only the top face is
    screened here: the cuts it drops as flips whose top face differs from every kept one
    (Cu3Au(100): the Cu-Au face; pymatgen keeps the pure Cu one) come after its own."""
    if not slabs:
        raise FacetError(
            f"{bulk.composition.reduced_formula} has no {miller} slab without broken bonds"
        )
    seen = {top_face(s.get_orthogonal_c_slab()) for s in slabs}
    flipped = []
    for slab in every:
        face = top_face(slab.get_orthogonal_c_slab())
        if face not in seen:
            seen.add(face)
            flipped.append(slab)
    return [round(float(s.shift), 4) for s in slabs + flipped]


# top layers that tell two terminations apart (their elements and spacings)
FACE_DEPTH = 3


def top_face(structure: Structure) -> tuple:
    """The top FACE_DEPTH layers, top first: each layer's elements (sorted) and its
    spacing to the layer below, to 0.1 A."""
    z = structure.cart_coords[:, 2]
    groups = layers(z)[::-1][:FACE_DEPTH + 1]
    heights = [float(np.mean(z[g])) for g in groups]
    return tuple((tuple(sorted(structure[i].species_string for i in g)),
                  round(heights[k] - heights[k + 1], 1) if k + 1 < len(groups) else None)
                 for k, g in enumerate(groups[:FACE_DEPTH]))


def termination_label(structure: Structure) -> str:
    """The top layer's reduced formula, e.g. 'Pt' or 'NiPt': what tells the terminations
    of one facet apart in tables, CSVs and plots (NiPt3(100)-Pt, NiPt3(100)-NiPt)."""
    from pymatgen.core import Composition

    return Composition("".join(structure[i].species_string for i in top_layer(structure))
                       ).reduced_formula


def make_slab(
    bulk: Structure, miller: tuple[int, int, int], shift: float, spec: SlabSpec
) -> tuple[Structure, list[int]]:
    """The slab of termination ``shift``: top ``n_layers`` kept, tiled, bottom layers fixed."""
    every = _generator(bulk, miller, spec).get_slabs(filter_out_sym_slabs=False)
    return _finish(_closest(every, shift), miller, spec)


def _closest(cuts: list, shift: float):
    return min(cuts, key=lambda s: abs(s.shift - shift))


def _finish(cut, miller, spec: SlabSpec) -> tuple[Structure, list[int]]:
    """A pymatgen cut trimmed to ``n_layers``, moved to the bottom, tiled, bottom fixed."""
    slab = cut.get_orthogonal_c_slab()
    structure = Structure(slab.lattice, slab.species, slab.frac_coords)
    z = structure.cart_coords[:, 2]
    groups = layers(z)
    if spec.n_layers is not None:
        if len(groups) < spec.n_layers:
            raise FacetError(
                f"{miller} slab has {len(groups)} layers < n_layers={spec.n_layers}: raise "
                "min_slab_size"
            )
        drop = np.concatenate(groups[: len(groups) - spec.n_layers]).tolist() if len(
            groups) > spec.n_layers else []
        structure.remove_sites(drop)
    # bottom of the slab at z = 1 A, vacuum above
    structure.translate_sites(
        list(range(len(structure))), [0, 0, 1.0 - structure.cart_coords[:, 2].min()],
        frac_coords=False, to_unit_cell=False,
    )
    na, nb = spec.supercell or tuple(
        max(1, math.ceil(spec.min_lateral / length)) for length in structure.lattice.abc[:2]
    )
    structure.make_supercell([na, nb, 1])
    groups = layers(structure.cart_coords[:, 2])
    fixed = sorted(int(i) for g in groups[: spec.n_fixed_layers] for i in g)
    _warn_against_rules(structure, miller, spec)
    return structure, fixed


class SlabWarning(UserWarning):
    """A slab thinner or laterally smaller than the rules of SlabSpec."""


def slab_geometry(structure: Structure) -> dict:
    """What the rules measure, in A: ``thickness`` (layers x mean layer spacing),
    ``vacuum`` (cell height less the slab's), ``image_distance`` (shortest in-plane lattice
    vector: an adsorbate's distance to its periodic image) and ``n_layers``."""
    z = structure.cart_coords[:, 2]
    groups = layers(z)
    heights = [float(np.mean(z[g])) for g in groups]
    spacing = (heights[-1] - heights[0]) / (len(groups) - 1) if len(groups) > 1 else 0.0
    a, b = structure.lattice.matrix[:2]
    image = min(np.linalg.norm(i * a + j * b) for i in range(-2, 3) for j in range(-2, 3)
                if i or j)
    return {"thickness": len(groups) * spacing, "vacuum": float(structure.lattice.c - np.ptp(z)),
            "image_distance": float(image), "n_layers": len(groups)}


def _warn_against_rules(structure: Structure, miller, spec: SlabSpec) -> None:
    import warnings

    found = slab_geometry(structure)
    facet = "".join(str(i) for i in miller)
    if spec.n_layers and found["thickness"] < spec.min_slab_size - 0.1 and found["n_layers"] > 1:
        spacing = found["thickness"] / found["n_layers"]
        needed = math.ceil(spec.min_slab_size / spacing - 1e-6)
        warnings.warn(SlabWarning(
            f"({facet}) slab of {found['n_layers']} layers is {found['thickness']:.1f} A thick, "
            f"under {spec.min_slab_size:g} A: --layers {needed} reaches it"), stacklevel=4)
    if spec.supercell is None and found["image_distance"] < spec.min_lateral - 0.1:
        warnings.warn(SlabWarning(
            f"({facet}) cell: an adsorbate is {found['image_distance']:.1f} A from its periodic "
            f"image (oblique cell), under {spec.min_lateral:g} A: give --supercell"),
            stacklevel=4)


def top_layer(structure: Structure, slab_indices: list[int] | None = None) -> list[int]:
    """Indices of the top layer of the slab atoms."""
    idx = np.arange(len(structure)) if slab_indices is None else np.asarray(slab_indices)
    groups = layers(structure.cart_coords[idx, 2])
    return idx[groups[-1]].tolist()
