"""The omni-ads-1 recipes' data: held out means absent, forces are labels on free atoms.

References: the CHEAT GPAW RPBE files and OC20 trajectories themselves (read with ase.io),
structures identified by the project's ``structure_fingerprint``; CHEAT's key ``e``.
"""

import functools
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.db import connect
from ase.io import iread, read
from pymatgen.io.ase import AseAtomsAdaptor

from omni_flows.db_schemas.fingerprint import structure_fingerprint
from omni_flows.model.train.batch import collate, species_lookup
from omni_flows.model.train.config import DatasetConfig, TrainConfig
from omni_flows.model.train.graph_cache import open_dataset

ROOT = Path(__file__).resolve().parents[1]
HEA = ROOT.parent / "shared" / "data" / "hea_gpaw_rpbe"
sys.path.insert(0, str(ROOT / "recipes"))
pytestmark = pytest.mark.skipif(not HEA.is_dir(), reason=f"CHEAT data not found at {HEA}")


def _fp(atoms) -> str:
    return structure_fingerprint(AseAtomsAdaptor.get_structure(atoms))


def _recipe(name: str) -> TrainConfig:
    text = (ROOT / "recipes" / name).read_text()
    return TrainConfig.from_dict(yaml.safe_load(text))


def _frames(spec):
    """The frames the trainer reads of a data set (graph_cache.build_cache's selection)."""
    path = Path(spec.path) if Path(spec.path).is_absolute() else ROOT / spec.path
    frames = iread(str(path), index=spec.index, format=spec.format)
    return [a for n, a in enumerate(frames) if n % spec.every == 0]


def _held_out():
    """Fingerprints of every held-out structure (all frames of held-out trajectories)."""
    from omni_ads_1_data import (
        HELD_OUT_METALS,
        hea_example_trajectories,
        quinary_trajectories,
    )

    out = set()
    for row in connect(HEA / "pure_metals.db").select():
        if row.element in HELD_OUT_METALS:
            atoms = row.toatoms()
            out.add(_fp(atoms))
            if row.ads == "H":  # the clean slab of clean_slabs*.extxyz: this slab without H
                out.add(_fp(atoms[:45]))
    for traj in hea_example_trajectories(HEA, True) + quinary_trajectories(HEA, 2):
        out |= {_fp(a) for a in read(traj, ":")}
    return out


@functools.cache
def _set_fingerprints(path, index, format, every) -> frozenset:
    spec = DatasetConfig(path=path, task="t", index=index, format=format, every=every)
    return frozenset(_fp(a) for a in _frames(spec))


def _fingerprints(spec) -> frozenset:
    """Fingerprints of a data set's frames (each file read once for both recipes)."""
    return _set_fingerprints(spec.path, spec.index, spec.format, spec.every)


def _gpaw_and_dbs_fingerprints(cfg):
    """Fingerprints of the gpaw_rpbe and DBS frames; the OC20 trajectories' names."""
    fps, oc20 = set(), set()
    for spec in cfg.data.train + cfg.data.dbs:
        if spec.task == "oc20":
            oc20.add(Path(spec.path).stem)
        else:
            fps |= _fingerprints(spec)
    return fps, oc20


def test_omni_ads_1_recipe_trains_on_no_held_out_structure_and_ship_recipe_on_all():
    """Nothing of quinary slab 0002, HEA slab 0001, Au/Cu/Re is in the held-out recipe's
    training or DBS frames, and no held-out OC20 trajectory is. Controls: the same check
    finds every held-out structure of the ship recipe (it trains on everything), and the
    held-out recipe's validation frames are held-out structures."""
    from omni_ads_1_data import HELD_OUT_OC20, OC20_ALL, OC20_TRAIN

    held_out = _held_out()
    assert len(held_out) > 300  # 19 + 7 trajectories' frames, 15 rows, 3 clean slabs
    cfg = _recipe("omni-ads-1.yaml")
    train, oc20 = _gpaw_and_dbs_fingerprints(cfg)
    assert not train & held_out
    assert oc20 == set(OC20_TRAIN) and not oc20 & set(HELD_OUT_OC20)
    valid = {_fp(a) for spec in cfg.data.valid for a in _frames(spec)}
    assert len(valid) == 26 and valid <= held_out
    # every training frame of the split is there: quinary slabs 0/1, HEA 0, 9 metals, gas
    from omni_ads_1_data import quinary_trajectories

    for traj in quinary_trajectories(HEA, 0)[:3] + quinary_trajectories(HEA, 1)[-2:]:
        assert {_fp(a) for a in read(traj, "::2")} <= train, traj  # every 2nd frame (recipe)
    ship_cfg = _recipe("omni-ads-1-ship.yaml")
    ship, ship_oc20 = _gpaw_and_dbs_fingerprints(ship_cfg)
    assert held_out <= ship and ship_oc20 == set(OC20_ALL)
    # universal weights frozen: no domain-bridging set to hold anything held out
    assert cfg.model.freeze_universal and not cfg.data.dbs


def test_omni_ads_1_gpaw_sets_have_forces_on_free_atoms_and_clean_slabs_none(tmp_path):
    """A quinary trajectory of the recipe reaches the loss with the DFT forces of its 27 free
    atoms per frame (the 18 FixAtoms atoms are masked) and its energies; the derived clean
    slabs are energy-only; gas molecules have forces on every atom."""
    cfg = _recipe("omni-ads-1.yaml")
    by_name = {}
    for s in cfg.data.train:  # a file's first entry (later ones are energy-only extra copies)
        by_name.setdefault(Path(s.path).name, s)
    spec = by_name["agirpdptru_0000_fcc_O_0.traj"]
    assert spec.force_weight > 0 and cfg.data.free_atoms_only
    spec.path = str(ROOT / spec.path)
    store = open_dataset(spec, 5.0, tmp_path)
    frames = read(spec.path, f"::{spec.every}")
    assert spec.every == 2 and len(store) == len(frames) == 5  # 10 frames, every 2nd
    from omni_flows.model.checkpoint import read_metadata
    from omni_flows.model.pretrained import resolve

    species = json.loads(read_metadata(resolve("7net-mf-0"))["config"])["species"]
    lookup = species_lookup(species)
    w = (spec.energy_weight, spec.force_weight, spec.stress_weight)
    _, labels = collate([store[0], store[4]], [2, 2], [w, w], lookup, True, torch_float())
    assert int(labels.force_mask.sum()) == 2 * 28  # 27 metal + O free, 18 fixed, per frame
    dft = np.concatenate([f.calc.results["forces"] for f in (frames[0], frames[4])])
    mask = labels.force_mask.numpy()
    np.testing.assert_allclose(labels.forces.numpy()[mask], dft[mask], atol=1e-5)
    assert np.abs(dft[~mask]).max() > 0.1  # the masked forces are real, not zeros
    np.testing.assert_allclose(labels.energy.numpy(), [frames[0].get_potential_energy(),
                                                       frames[4].get_potential_energy()])
    clean = by_name["clean_slabs.extxyz"]
    assert clean.force_weight == 0
    slabs = read(ROOT / clean.path, ":")
    assert len(slabs) == 9 and all("forces" not in a.calc.results for a in slabs)
    gas = by_name["h2o.traj"]
    assert gas.force_weight > 0 and read(ROOT / gas.path, -1).constraints == []


def torch_float():
    import torch

    return torch.float32


def test_omni_ads_1_clean_slab_energies_reproduce_cheat_e():
    """The derived clean slabs' energies, with the gas references of gas/, give back CHEAT's
    adsorption energy e of every training row (to 1e-6 eV): the sources share one scale."""
    from omni_ads_1_data import gas_references

    refs = gas_references(HEA / "gas")
    slabs = {a.get_chemical_symbols()[0]: a.get_potential_energy()
             for a in read(ROOT / "recipes" / "omni-ads-1" / "clean_slabs_all.extxyz", ":")}
    assert len(slabs) == 12
    for row in connect(HEA / "pure_metals.db").select():
        assert row.energy - slabs[row.element] - refs[row.ads] == pytest.approx(row.e, abs=1e-6)
