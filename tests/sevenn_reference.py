"""The independent reference: SevenNet itself (a test dependency), same weights.

Builds SevenNet models from their own configs with SevenNet's own builder (random
weights), turns them into checkpoint dicts our importer reads, and evaluates
structures through SevenNet's calculator path.
"""

import copy

import numpy as np
import torch

SEVENN_FILES = {
    "7net-0": "SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
    "7net-0_22May2024": "SevenNet_0__22May2024/checkpoint_sevennet_0.pth",
    "7net-l3i5": "SevenNet_l3i5/checkpoint_l3i5.pth",
    "7net-mf-0": "SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
}

# SevenNet-MF-ompa's published architecture (sevenn/presets/mf_ompa_fine_tune.yaml):
# lmax 3, full parity (odd and even of every l), element-dependent self-connection.
MF_OMPA = dict(
    cutoff=6.0, channel=128, lmax=3, is_parity=True, num_convolution_layer=5,
    irreps_manual=[
        "128x0e", "128x0e+64x1o+32x2e+32x3o", "128x0e+64x1o+64x1e+32x2o+32x2e+32x3o+32x3e",
        "128x0o+128x0e+64x1o+64x1e+32x2o+32x2e+32x3o+32x3e", "128x0e+64x1o+32x2e+32x3o", "128x0e",
    ],
    cutoff_function={"cutoff_function_name": "XPLOR", "cutoff_on": 5.5},
    self_connection_type="nequip",
    use_modal_self_inter_intro=True, use_modal_self_inter_outro=True, use_modal_output_block=True,
    tasks=["mpa", "omat24"],
)

# SevenNet-Omni-i12 style: 12 interactions, lmax 3, partial parity (each l only with
# its natural parity), element-dependent self-connection, 13 tasks. Channels are
# reduced so the random-weight test stays fast; the structure is the same.
OMNI_TASKS = ["mpa", "omat24", "spice", "qcml", "oc20", "oc22", "odac23", "omol25", "mp_r2scan",
              "matpes_pbe", "matpes_r2scan", "omc25", "oc20_rpbe"]
OMNI_I12 = dict(
    cutoff=6.0, channel=32, lmax=3, is_parity=True, num_convolution_layer=12,
    irreps_manual=["32x0e"] + ["32x0e+16x1o+8x2e+8x3o"] * 11 + ["32x0e"],
    cutoff_function={"cutoff_function_name": "XPLOR", "cutoff_on": 5.5},
    self_connection_type="nequip",
    use_modal_self_inter_intro=True, use_modal_self_inter_outro=True, use_modal_output_block=True,
    tasks=OMNI_TASKS,
)

SPECIES = ["H", "C", "N", "O", "Cu", "Pt", "Zn"]


def build_sevenn_checkpoint(arch: dict, species=SPECIES, seed: int = 0) -> dict:
    """A SevenNet checkpoint dict made by SevenNet's own builder with random weights."""
    import sevenn._const as C
    import sevenn._keys as KEY
    from ase.data import atomic_numbers
    from sevenn.model_build import build_E3_equivariant_model

    arch = copy.deepcopy(arch)
    tasks = arch.pop("tasks")
    cfg = copy.deepcopy(C.DEFAULT_E3_EQUIVARIANT_MODEL_CONFIG)
    cfg.update(arch)
    zs = sorted(atomic_numbers[s] for s in species)
    rng = np.random.default_rng(seed)
    n = cfg[KEY.NUM_CONVOLUTION]
    cfg.update({
        KEY.TYPE_MAP: {z: i for i, z in enumerate(zs)},
        KEY.NUM_SPECIES: len(zs),
        "chemical_species": [s for s in species],
        KEY.CONV_DENOMINATOR: [float(x) for x in rng.uniform(10, 40, n)],
        KEY.USE_MODALITY: True,
        KEY.NUM_MODALITIES: len(tasks),
        KEY.MODAL_MAP: {t: i for i, t in enumerate(tasks)},
        KEY.USE_MODAL_WISE_SHIFT: True,
        KEY.USE_MODAL_WISE_SCALE: False,
        KEY.SHIFT: rng.uniform(-5, -1, (len(tasks), len(zs))).tolist(),
        KEY.SCALE: rng.uniform(0.5, 2.0, len(zs)).tolist(),
        "version": "0.13.0",
    })
    torch.manual_seed(seed)
    model = build_E3_equivariant_model(copy.deepcopy(cfg))
    state = model.state_dict()
    # random (not zero) task rows so that the task inputs are really tested
    for k, v in state.items():
        if v.is_floating_point() and v.numel() > 0 and "output_mask" not in k and "denominator" not in k:
            state[k] = v + 0.1 * torch.randn_like(v)
    cfg["_modal_map"] = cfg[KEY.MODAL_MAP]
    cfg["_type_map"] = cfg[KEY.TYPE_MAP]
    return {"config": cfg, "model_state_dict": state}


def sevenn_model_from_checkpoint(cp: dict):
    from sevenn.model_build import build_E3_equivariant_model

    cfg = copy.deepcopy(cp["config"])
    model = build_E3_equivariant_model(cfg)
    model.load_state_dict(cp["model_state_dict"], strict=True)
    return model.eval()


def sevenn_evaluate(model, atoms, task=None, dtype=torch.float32):
    """Energy, forces, ASE-Voigt stress from a SevenNet model (its calculator's path)."""
    import sevenn._keys as KEY
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph

    data = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, model.cutoff, with_shift=False))
    if task is not None:
        data[KEY.DATA_MODALITY] = task
    for k, v in data.items():
        if torch.is_tensor(v) and v.is_floating_point():
            data[k] = v.to(dtype)
    model = model.to(dtype)
    model.set_is_batch_data(False)
    out = model(data)
    stress = -out[KEY.PRED_STRESS].detach().double().numpy().reshape(-1)[[0, 1, 2, 4, 5, 3]]
    return (float(out[KEY.PRED_TOTAL_ENERGY].detach().double()),
            out[KEY.PRED_FORCE].detach().double().numpy(), stress)
