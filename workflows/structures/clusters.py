"""Cluster models cut around an adsorption site, for DFT codes without periodic slabs.

The cut: the slab atoms (periodic images included) within ``radius`` of the
adsorbate's binding atom (the adsorbate atom nearest to the surface), and of
those only the ``max_atoms`` nearest when that is set. With the default 5 A on
fcc(111) metals this is the site's atoms, their in-plane neighbours and the
atoms of the layer below them. The adsorbate is kept whole. Metal clusters are
not terminated (no dangling bonds to cap); oxides or frameworks would need
capping atoms, which this cut does not add.

The bare cluster is the same atoms, with the same periodic images, taken from
the relaxed clean slab when it is given (else from the adsorbed structure,
frozen), so that E(cluster) and E(slab) describe the same relaxed surface.
"""

from dataclasses import dataclass

import numpy as np
from monty.json import MSONable
from pymatgen.core import Molecule, Structure

from ..errors import WorkflowInputError
from .geometry import lateral_shifts

# A: the site, its in-plane neighbours and the layer below on fcc(111) metals (d_nn ~ 2.5-2.9)
DEFAULT_CLUSTER_RADIUS = 5.0


@dataclass(frozen=True)
class ClusterSpec(MSONable):
    """Where to cut: ``radius`` (A) around the binding atom, at most ``max_atoms`` slab atoms."""

    radius: float = DEFAULT_CLUSTER_RADIUS
    max_atoms: int | None = None

    def __post_init__(self):
        if not self.radius > 0:
            raise WorkflowInputError(f"cluster radius must be > 0 A, not {self.radius}")
        if self.max_atoms is not None and self.max_atoms < 1:
            raise WorkflowInputError(f"cluster max_atoms must be at least 1, not {self.max_atoms}")

    def label(self) -> str:
        cap = f", nearest {self.max_atoms}" if self.max_atoms else ""
        return f"slab atoms within {self.radius:g} A of the binding atom{cap}; not terminated"


@dataclass
class ClusterModel:
    """The cluster with and without the adsorbate, and which slab atoms it holds."""

    with_adsorbate: Molecule
    bare: Molecule
    slab_indices: list[int]
    binding_index: int  # in ``with_adsorbate``


def _image_positions(structure: Structure, indices: list[int], centre: np.ndarray):
    """Cartesian positions of ``indices`` at their periodic images in the 3x3 in-plane cells."""
    rows = []
    for index in indices:
        for shift in lateral_shifts(structure.lattice):
            position = structure.cart_coords[index] + shift
            rows.append((float(np.linalg.norm(position - centre)), index, shift))
    return rows


def cut_cluster(
    structure: Structure,
    n_adsorbate: int,
    spec: ClusterSpec | None = None,
    clean_slab: Structure | None = None,
) -> ClusterModel:
    """Cut the cluster around the adsorbate, the last ``n_adsorbate`` sites of ``structure``."""
    spec = spec or ClusterSpec()
    n_slab = len(structure) - n_adsorbate
    if n_adsorbate < 1 or n_slab < 1:
        raise WorkflowInputError(
            f"a structure of {len(structure)} sites cannot hold {n_adsorbate} adsorbate atoms "
            "after the slab; the adsorbate's atoms must come last, as the screen places them"
        )
    if clean_slab is not None and len(clean_slab) != n_slab:
        raise WorkflowInputError(
            f"the clean slab has {len(clean_slab)} sites, the adsorbed one {n_slab} slab sites: "
            "give the slab the adsorbate was placed on"
        )
    slab_idx = list(range(n_slab))
    ads_idx = list(range(n_slab, len(structure)))
    # the adsorbate whole, each atom at its image nearest the first
    anchor = structure.cart_coords[ads_idx[0]]
    ads_pos = []
    for i in ads_idx:
        _, _, shift = min(_image_positions(structure, [i], anchor), key=lambda r: r[0])
        ads_pos.append(structure.cart_coords[i] + shift)
    ads_pos = np.array(ads_pos)
    # the binding atom: the adsorbate atom nearest to any slab atom
    near = [min(_image_positions(structure, slab_idx, p), key=lambda r: r[0])[0] for p in ads_pos]
    binder = int(np.argmin(near))
    rows = sorted(_image_positions(structure, slab_idx, ads_pos[binder]), key=lambda r: r[:2])
    chosen = [r for r in rows if r[0] <= spec.radius][: spec.max_atoms or None]
    if len(chosen) < 2:
        raise WorkflowInputError(
            f"only {len(chosen)} slab atoms lie within {spec.radius} A of the adsorbate: raise "
            "the cluster radius"
        )
    species = [str(structure[i].specie) for _, i, _ in chosen]
    metal = np.array([structure.cart_coords[i] + s for _, i, s in chosen])
    ads_species = [str(structure[i].specie) for i in ads_idx]
    with_ads = Molecule(species + ads_species, np.vstack([metal, ads_pos]))
    source = clean_slab if clean_slab is not None else structure
    bare = Molecule(species, np.array([source.cart_coords[i] + s for _, i, s in chosen]))
    return ClusterModel(with_ads, bare, [i for _, i, _ in chosen], len(chosen) + binder)
