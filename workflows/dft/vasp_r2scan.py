"""VASP r2SCAN single points through atomate2, with settings fit for slabs and frameworks.

atomate2's ``MPMetaGGAStaticMaker`` (Materials Project r2SCAN: ENCUT 680 eV,
PREC Accurate, LASPH, KSPACING from the band gap) is made for bulk crystals.
For adsorption energies the input sets below change what a slab, a framework
or a molecule in a box needs:

- Gaussian smearing (ISMEAR 0, SIGMA 0.05 eV): the tetrahedron method
  (ISMEAR -5) is wrong for metals' forces and for cells with few k-points;
- an explicit Gamma-centred k-point grid instead of KSPACING: slabs get
  n_i = ceil(L / a_i) in plane and 1 along the normal (the vacuum), frameworks
  and molecules in a box the same rule in all three directions with a shorter
  L (Gamma only for cells longer than L);
- slabs: dipole correction along z (LDIPOL, IDIPOL 3) about the slab's centre of
  mass, as adsorbates on one face make the slab polar.

No VASP runs in this package's tests: they check the written inputs.
"""

from dataclasses import dataclass, field
from math import ceil

import numpy as np
from atomate2.vasp.jobs.mp import MPMetaGGAStaticMaker
from pymatgen.core import Molecule, Structure
from pymatgen.io.vasp import Kpoints
from pymatgen.io.vasp.sets import MPScanStaticSet

# eV: Gaussian smearing width for metals and molecules alike (VASP recommends <= 0.05 for SIGMA)
GAUSSIAN_SIGMA = 0.05
# A: k-point length L (n_i = ceil(L / a_i)); 25 A gives 9x9 on a 2.8 A Pt(111) 1x1 cell
SLAB_KPOINT_LENGTH = 25.0
# A: frameworks are large cells: Gamma only above 10 A, as in ODAC's PBE-D3 set-up
FRAMEWORK_KPOINT_LENGTH = 10.0
# A: edge of the cubic box a gas molecule is put in
MOLECULE_BOX = 15.0

COMMON_INCAR = {
    "ISMEAR": 0,
    "SIGMA": GAUSSIAN_SIGMA,
    "KSPACING": None,  # the KPOINTS file below is used instead
    "LWAVE": False,
    "LAECHG": False,  # no core densities: not needed for energies
    "LVTOT": False,
    "LVHAR": False,
}
SLAB_INCAR = {**COMMON_INCAR, "LDIPOL": True, "IDIPOL": 3}


def gamma_grid(structure: Structure, length: float, slab: bool) -> Kpoints:
    """Gamma-centred grid, n_i = ceil(length / a_i) (at least 1); 1 along c for a slab."""
    a, b, c = structure.lattice.abc
    grid = [max(1, ceil(length / x)) for x in (a, b, c)]
    if slab:
        grid[2] = 1
    return Kpoints.gamma_automatic(tuple(grid))


@dataclass
class R2SCANStaticSet(MPScanStaticSet):
    """MP's r2SCAN static set with Gaussian smearing and an explicit Gamma-centred grid."""

    kpoint_length: float = FRAMEWORK_KPOINT_LENGTH
    slab: bool = False  # True: one k-point along c and the dipole correction along z
    auto_ismear: bool = False
    inherit_incar: bool = False

    @property
    def incar_updates(self) -> dict:
        updates = dict(super().incar_updates)
        if self.slab and self.structure is not None:
            # DIPOL: the centre of the correction, the slab's centre of mass (fractional)
            masses = np.array([site.specie.atomic_mass for site in self.structure])
            centre = masses @ self.structure.frac_coords / masses.sum()
            updates["DIPOL"] = [round(float(x) % 1.0, 6) for x in centre]
        return updates

    @property
    def kpoints(self) -> Kpoints:
        if self.structure is None:
            raise RuntimeError("no structure is associated with the input set")
        return gamma_grid(self.structure, self.kpoint_length, self.slab)


@dataclass
class SlabR2SCANStaticMaker(MPMetaGGAStaticMaker):
    """r2SCAN static of a slab (with or without adsorbate): ISMEAR 0, dipole correction, kz = 1."""

    name: str = "r2SCAN slab static"
    input_set_generator: R2SCANStaticSet = field(
        default_factory=lambda: R2SCANStaticSet(
            slab=True, kpoint_length=SLAB_KPOINT_LENGTH, user_incar_settings=dict(SLAB_INCAR)
        )
    )


@dataclass
class FrameworkR2SCANStaticMaker(MPMetaGGAStaticMaker):
    """r2SCAN static of a framework (MOF) or a molecule in a box: ISMEAR 0, Gamma or few k."""

    name: str = "r2SCAN framework static"
    input_set_generator: R2SCANStaticSet = field(
        default_factory=lambda: R2SCANStaticSet(
            slab=False, kpoint_length=FRAMEWORK_KPOINT_LENGTH,
            user_incar_settings=dict(COMMON_INCAR),
        )
    )


def molecule_in_box(molecule: Molecule, box: float = MOLECULE_BOX) -> Structure:
    """A gas molecule centred in a cubic box, for a periodic code."""
    return molecule.get_boxed_structure(box, box, box)
