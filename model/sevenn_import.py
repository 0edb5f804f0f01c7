"""Import SevenNet checkpoints (``.pth``) into :class:`OmniNet`.

SevenNet pickles its checkpoints. They are read with ``torch.load(weights_only=True)``
and an allow-list of the few numpy reconstructors they need, so no code from the
file is ever executed. The config is translated to a :class:`ModelConfig` and
every e3nn weight is mapped onto this package's layout (per-irrep matrices,
task rows split out, convolution paths reordered).
"""

from __future__ import annotations

import pickle
import re

import numpy as np
import torch
from ase.data import chemical_symbols
from e3nn.o3 import Irrep, Irreps, wigner_3j

from .config import ModelConfig
from .convolution import conv_paths
from .errors import CheckpointError
from .irreps_layout import block_offsets
from .network import OmniNet


def _numpy_allow_list() -> list:
    from numpy._core.multiarray import _reconstruct, scalar

    allowed = [np.ndarray, np.dtype]
    allowed += [getattr(np.dtypes, n) for n in ("Float64DType", "Float32DType", "Int64DType", "Int32DType")]
    # numpy 2 moved these; old pickles name them under numpy.core
    allowed += [(_reconstruct, "numpy.core.multiarray._reconstruct"), (scalar, "numpy.core.multiarray.scalar")]
    allowed += [(_reconstruct, "numpy._core.multiarray._reconstruct"), (scalar, "numpy._core.multiarray.scalar")]
    return allowed


def _refusal(path: str, detail: str) -> str:
    """Why an unsafe checkpoint is refused and what to do (never: unpickle it anyway)."""
    found = re.search(r"GLOBAL (\S+)", detail)
    what = f"the Python object {found.group(1)!r}" if found else "a Python object"
    return (
        f"refused SevenNet checkpoint {path}: it refers to {what}, outside the allow-list of "
        "tensors, numpy arrays and plain Python types, and unpickling it could run code. "
        "If you trust its source, re-save it with sevenn in its own environment as a dict "
        "of plain types ({'config': ..., 'model_state_dict': ...}); if a data-only class "
        "of a SevenNet release is missing from the allow-list, report the class name."
    )


def _torch_file(path: str) -> bool:
    """True if ``path`` starts as torch.save's output does: a zip archive (PK) or a pickle
    (protocol 2+ opens with 0x80). A text or other file fails here, not in the unpickler,
    whose refusal would read as an unsafe object."""
    with open(path, "rb") as f:
        start = f.read(4)
    return start.startswith(b"PK") or start[:1] == b"\x80"


def read_sevenn_checkpoint(path: str) -> dict:
    """Unpickle a SevenNet checkpoint with an allow-list (never executes its code)."""
    if not _torch_file(path):
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (torch.save writes a zip archive or a "
            "pickle; this file is neither): give a SevenNet .pth file or a model name"
        )
    try:
        with torch.serialization.safe_globals(_numpy_allow_list()):
            cp = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # a global outside the allow-list
        raise CheckpointError(_refusal(path, str(exc))) from None
    except Exception as exc:
        raise CheckpointError(f"cannot read SevenNet checkpoint {path}: {exc}") from exc
    if "config" not in cp or "model_state_dict" not in cp:
        raise CheckpointError(f"{path} is not a SevenNet checkpoint (no config/model_state_dict)")
    return cp


def _version(cfg: dict) -> tuple[int, int, int]:
    v = str(cfg.get("version", "0.0.0")).split(".")
    return tuple(int("".join(c for c in x if c.isdigit()) or 0) for x in v[:3])  # type: ignore


_OLD_NAMES = {
    "EdgeEmbedding": "edge_embedding",
    "reducing nn input to hidden": "reduce_input_to_hidden",
    "reducing nn hidden to energy": "reduce_hidden_to_energy",
    "rescale atomic energy": "rescale_atomic_energy",
}


def _modern_keys(state: dict) -> dict:
    """SevenNet < 0.10 named modules with spaces ('0 convolution.denumerator')."""
    out = {}
    for key, value in state.items():
        head, _, tail = key.partition(".")
        head = _OLD_NAMES.get(head, head.replace(" ", "_"))
        out[f"{head}.{tail.replace('denumerator', 'denominator')}"] = value
    return out


def _infer_node_irreps(cfg: dict, irreps_sh: Irreps) -> list[str]:
    if cfg.get("irreps_manual"):
        return [str(Irreps(x)) for x in cfg["irreps_manual"]]
    channel, n = cfg["channel"], cfg["num_convolution_layer"]
    lmax = cfg.get("lmax_node", -1) if cfg.get("lmax_node", -1) > 0 else cfg["lmax"]
    irreps = [Irreps(f"{channel}x0e")]
    for t in range(n):
        last = t == n - 1
        products = Irreps([(1, ir3) for _, a in irreps[-1] for _, b in irreps_sh for ir3 in a * b])
        kept = [ir for _, ir in products.sort().irreps.simplify()
                if ir.l <= (0 if last else lmax) and not (last and ir.p == -1)]
        irreps.append(Irreps([(channel, ir) for ir in kept]))
    return [str(x) for x in irreps]


def config_from_sevenn(cfg: dict, state: dict, name: str = "") -> ModelConfig:
    """Translate a SevenNet config (and the denominators kept in its weights)."""
    if cfg.get("interaction_type", "nequip") != "nequip":
        raise CheckpointError(f"SevenNet interaction_type {cfg['interaction_type']!r} is not supported")
    if cfg.get("readout_as_fcn", False):
        raise CheckpointError("SevenNet models with readout_as_fcn=True are not supported")
    if cfg.get("use_bias_in_linear", False):
        raise CheckpointError("SevenNet models with use_bias_in_linear=True are not supported")
    type_map = cfg.get("_type_map") or {
        int(z): i for i, z in enumerate(sorted(chemical_symbols.index(s) for s in cfg["chemical_species"]))
    }
    species = [chemical_symbols[z] for z, _ in sorted(type_map.items(), key=lambda kv: kv[1])]
    parity = bool(cfg.get("is_parity", False))
    lmax_edge = cfg["lmax_edge"] if cfg.get("lmax_edge", -1) > 0 else cfg["lmax"]
    irreps_sh = Irreps.spherical_harmonics(lmax_edge, -1 if parity else 1)
    n = cfg["num_convolution_layer"]
    envelope = cfg["cutoff_function"]
    sc = cfg.get("self_connection_type", "nequip")
    sc = [sc] * n if isinstance(sc, str) else list(sc)
    tasks, task_inputs = [], []
    if cfg.get("use_modality", False):
        modal_map = cfg["_modal_map"]
        tasks = [m for m, _ in sorted(modal_map.items(), key=lambda kv: kv[1])]
        flags = {
            "node_embedding": "use_modal_node_embedding",
            "self_interaction_1": "use_modal_self_inter_intro",
            "self_interaction_2": "use_modal_self_inter_outro",
            "readout": "use_modal_output_block",
        }
        task_inputs = [site for site, key in flags.items() if cfg.get(key, False)]
    normalize_sh = cfg.get("_normalize_sph", None)
    if normalize_sh is None:  # SevenNet <= 0.9 did not normalise the edge vector
        normalize_sh = _version(cfg) >= (0, 10, 0)
    return ModelConfig(
        name=name,
        species=species,
        cutoff=float(cfg["cutoff"]),
        node_irreps=_infer_node_irreps(cfg, irreps_sh),
        lmax_edge=lmax_edge,
        edge_parity=parity,
        normalize_edge_sh=bool(normalize_sh),
        num_radial_basis=cfg["radial_basis"].get("bessel_basis_num", 8),
        trainable_radial_frequencies=cfg["radial_basis"].get("train_radial_basis", True),
        envelope="xplor" if envelope["cutoff_function_name"] == "XPLOR" else "polynomial",
        envelope_p=envelope.get("poly_cut_p_value", 6),
        envelope_r_on=float(envelope.get("cutoff_on", 0.0)),
        radial_mlp_hidden=list(cfg["weight_nn_hidden_neurons"]),
        radial_activation=cfg["act_radial"],
        scalar_activation=dict(cfg["act_scalar"]),
        gate_activation=dict(cfg["act_gate"]),
        self_connection=["element" if s == "nequip" else s for s in sc],
        avg_num_neighbors=[float(state[f"{t}_convolution.denominator"].reshape(-1)[0]) for t in range(n)],
        tasks=tasks,
        task_inputs=task_inputs,
        task_norm_width=len(tasks),
        per_task_scale=bool(tasks) and bool(cfg.get("use_modal_wise_scale", False)),
    )


def _e3nn_linear_blocks(flat: torch.Tensor, irreps_in: Irreps, irreps_out: Irreps):
    """Split an e3nn Linear weight into (in block, out block, matrix) in e3nn's order."""
    offset = 0
    for i, (mul_in, ir_in) in enumerate(irreps_in):
        for o, (mul_out, ir_out) in enumerate(irreps_out):
            if ir_in == ir_out:
                yield i, o, flat[offset : offset + mul_in * mul_out].view(mul_in, mul_out)
                offset += mul_in * mul_out
    if offset != flat.numel():
        raise CheckpointError(f"linear weight has {flat.numel()} numbers, expected {offset}")


def _fill_linear(prefix: str, flat: torch.Tensor, sev_in: Irreps, sev_out: Irreps, in_dest: list, out: dict):
    """Write an e3nn Linear's weights into our EquivariantLinear at ``prefix``.

    ``in_dest[i]``: (irrep, channel offset) of SevenNet input block i in our layer,
    ``"task"`` for the task one-hot block, or None for a block we do not compute.
    """
    out_off = block_offsets(sev_out)
    for i, o, w in _e3nn_linear_blocks(flat, sev_in, sev_out):
        ir, o_off, mul_out = out_off[o]
        if in_dest[i] == "task":
            out[f"{prefix}.task_weight"][:, o_off : o_off + mul_out] = w
        elif in_dest[i] is not None:
            _, i_off = in_dest[i]
            out[f"{prefix}.weight.{ir}"][i_off : i_off + w.shape[0], o_off : o_off + mul_out] = w


def _with_task(irreps: Irreps, width: int) -> tuple[Irreps, list]:
    dest = [(ir, off) for ir, off, _ in block_offsets(irreps)]
    if width:
        return irreps + Irreps(f"{width}x0e"), dest + ["task"]
    return irreps, dest


def weights_from_sevenn(model: OmniNet, cfg: dict, state: dict) -> dict:
    """Our state dict filled from a (key-modernised) SevenNet state dict."""
    c = model.config
    out = {k: torch.zeros_like(v) for k, v in model.state_dict().items()}
    sd = {k: v.detach().to(torch.get_default_dtype()) for k, v in state.items()}
    T = c.task_norm_width
    old_conv_order = _version(cfg) < (0, 11, 0)

    out["radial_basis.frequencies"] = sd["edge_embedding.basis_function.coeffs"].clone()
    sev_in, dest = _with_task(Irreps(f"{c.num_species}x0e"), c.task_width("node_embedding"))
    _fill_linear("embedding", sd["onehot_to_feature_x.linear.weight"], sev_in, Irreps(c.node_irreps[0]), dest, out)

    for t, block in enumerate(model.interactions):
        p = f"interactions.{t}"
        irreps_x = Irreps(c.node_irreps[t])
        gate_in = block.gate.irreps_in
        # self-connection
        if c.self_connection[t] == "linear":
            _fill_linear(f"{p}.self_connection", sd[f"{t}_self_connection_intro.linear.weight"],
                         irreps_x, gate_in, [(ir, off) for ir, off, _ in block_offsets(irreps_x)], out)
        else:
            flat, offset = sd[f"{t}_self_connection_intro.fc_tensor_product.weight"], 0
            x_off, g_off = block_offsets(irreps_x), block_offsets(gate_in)
            for i, (mul1, ir1) in enumerate(irreps_x):
                for o, (mul_out, ir_out) in enumerate(gate_in):
                    if ir_out != ir1:
                        continue
                    n = mul1 * c.num_species * mul_out
                    w = flat[offset : offset + n].view(mul1, c.num_species, mul_out).permute(1, 0, 2)
                    offset += n
                    _, i0, _ = x_off[i]
                    _, o0, _ = g_off[o]
                    out[f"{p}.self_connection.weight.{ir1}"][:, i0 : i0 + mul1, o0 : o0 + mul_out] = w
        # linear before the convolution
        sev_in, dest = _with_task(irreps_x, c.task_width("self_interaction_1"))
        _fill_linear(f"{p}.linear_1", sd[f"{t}_self_interaction_1.linear.weight"], sev_in, irreps_x, dest, out)

        # convolution: SevenNet computes every path up to the layer's lmax; we keep fewer.
        conv = block.convolution
        last = t == c.num_interactions - 1
        lmax_out = Irreps(c.node_irreps[t + 1]).lmax
        allowed = {str(ir3) for _, a in irreps_x for _, b in model.irreps_sh for ir3 in a * b
                   if ir3.l <= lmax_out and not (last and ir3.p == -1)}
        sev_paths = conv_paths(irreps_x, model.irreps_sh, allowed)
        mid = Irreps([(irreps_x[i].mul, ir3) for i, _, ir3 in sev_paths])
        sorted_mid, perm, _ = mid.sort()  # perm[path] = its block in sorted order
        weight_order = list(range(len(sev_paths))) if old_conv_order else sorted(
            range(len(sev_paths)), key=lambda k: perm[k])
        w_last = sd[f"{t}_convolution.weight_nn.layer{len(c.radial_mlp_hidden)}.weight"]
        columns, col = {}, 0
        for k in weight_order:
            mul = irreps_x[sev_paths[k][0]].mul
            columns[k] = (col, mul)
            col += mul
        kept = {pth: n for n, pth in enumerate(conv.paths)}
        new_cols, sign = [], []
        for path in conv.paths:
            k = sev_paths.index(path)
            start, mul = columns[k]
            l1, l2, l3 = irreps_x[path[0]].ir.l, model.irreps_sh[path[1]].ir.l, Irrep(path[2]).l
            stored = sd.get(f"{t}_convolution.convolution._compiled_main_left_right._w3j_{l1}_{l2}_{l3}")
            flip = stored is not None and not torch.allclose(stored, wigner_3j(l1, l2, l3).to(stored.dtype), atol=1e-6)
            new_cols.append(w_last[:, start : start + mul] * (-1.0 if flip else 1.0))
        for k, _ in enumerate(c.radial_mlp_hidden):
            out[f"{p}.convolution.radial.weights.{k}"] = sd[f"{t}_convolution.weight_nn.layer{k}.weight"].clone()
        out[f"{p}.convolution.radial.weights.{len(c.radial_mlp_hidden)}"] = torch.cat(new_cols, dim=1)

        # linear after the convolution: input blocks are SevenNet's sorted paths
        dest: list = [None] * len(sev_paths)
        seen: dict[str, int] = {}
        for k, path in sorted(enumerate(sev_paths), key=lambda kp: perm[kp[0]]):
            if path in kept:
                ir3 = path[2]
                dest[perm[k]] = (ir3, seen.get(ir3, 0))
                seen[ir3] = seen.get(ir3, 0) + irreps_x[path[0]].mul
        sev_in, dest = (sorted_mid, dest)
        if c.task_width("self_interaction_2"):
            sev_in, dest = sev_in + Irreps(f"{T}x0e"), dest + ["task"]
        _fill_linear(f"{p}.linear_2", sd[f"{t}_self_interaction_2.linear.weight"], sev_in, gate_in, dest, out)

    sev_in, dest = _with_task(Irreps(c.node_irreps[-1]), c.task_width("readout"))
    hidden = Irreps(f"{c.readout_hidden}x0e")
    _fill_linear("readout_hidden", sd["reduce_input_to_hidden.linear.weight"], sev_in, hidden, dest, out)
    _fill_linear("readout_energy", sd["reduce_hidden_to_energy.linear.weight"], hidden, Irreps("1x0e"),
                 [("0e", 0)], out)

    shift, scale = sd["rescale_atomic_energy.shift"], sd["rescale_atomic_energy.scale"]
    out["energy_shift"] = shift.reshape(-1, c.num_species).expand_as(out["energy_shift"]).clone()
    out["energy_scale"] = scale.reshape(-1, c.num_species).expand_as(out["energy_scale"]).clone()
    return out


def model_from_sevenn(cp: dict, name: str = "") -> OmniNet:
    """Build an :class:`OmniNet` holding exactly the weights of a SevenNet checkpoint dict."""
    state = _modern_keys(cp["model_state_dict"])
    cfg = cp["config"]
    model = OmniNet(config_from_sevenn(cfg, state, name=name))
    model.load_state_dict(weights_from_sevenn(model, cfg, state), strict=True)
    return model


