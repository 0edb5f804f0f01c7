"""Pretrained models by name, resolved offline from the installed ``sevenn`` wheel.

A SevenNet checkpoint is converted once into the native format in a cache folder
(``$OMNI_FLOWS_HOME/models``, default ``~/.local/share/omni-flows/models``); later loads read
the cached safetensors file. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from .errors import ModelNotFoundError

if TYPE_CHECKING:  # torch is imported where weights are read, so names resolve without it
    import torch

    from .network import OmniNet


@dataclass(frozen=True)
class PretrainedModel:
    name: str
    sevenn_file: str  # relative to sevenn/pretrained_potentials ("" for a packaged model)
    description: str
    aliases: tuple[str, ...] = ()
    packaged: str = ""  # folder under model/weights: a native checkpoint shipped in the package
    content_hash: str = ""  # of the packaged checkpoint (checked by the tests)


PACKAGED_WEIGHTS = Path(__file__).resolve().parent / "weights"


# content hash of model/weights/omni-ads-0/model.safetensors
OMNI_ADS_0_HASH = "4f9ac1e602ab46fcbd52c35f3a9251650d07071e70614c211bb07112d224cc99"
# content hash of model/weights/omni-ads-1/model.safetensors
OMNI_ADS_1_HASH = "8ed990321ec14da7e977102068fa3a250eab4d17a69be6587c186a159e988a50"

PRETRAINED = [
    PretrainedModel("7net-0", "SevenNet_0__11Jul2024/checkpoint_sevennet_0.pth",
                    "SevenNet-0 (11Jul2024), PBE(+U) MPtrj, 89 elements, lmax 2",
                    ("sevennet-0", "7net-0_11Jul2024")),
    PretrainedModel("7net-0_22May2024", "SevenNet_0__22May2024/checkpoint_sevennet_0.pth",
                    "SevenNet-0 (22May2024), PBE(+U) MPtrj, 89 elements, lmax 2"),
    PretrainedModel("7net-l3i5", "SevenNet_l3i5/checkpoint_l3i5.pth",
                    "SevenNet-l3i5, PBE(+U) MPtrj, 89 elements, lmax 3"),
    PretrainedModel("7net-mf-0", "SevenNet_MF_0/checkpoint_sevennet_mf_0.pth",
                    "SevenNet-MF-0, tasks PBE and R2SCAN (MP), 89 elements, lmax 2",
                    ("sevennet-mf-0",)),
    PretrainedModel("omni-ads-0", "",
                    "7net-mf-0 fine-tuned for adsorption: tasks PBE, R2SCAN, gpaw_rpbe (CHEAT GPAW "
                    "RPBE), oc20 (OC20 VASP RPBE); model card: `omni-flows model info omni-ads-0`",
                    packaged="omni-ads-0", content_hash=OMNI_ADS_0_HASH),
    PretrainedModel("omni-ads-1", "",
                    "7net-mf-0 with rank-32 task adapters, fine-tuned on GPAW RPBE energies and "
                    "forces: tasks PBE, R2SCAN (7net-mf-0's bit for bit), gpaw_rpbe (with a "
                    "committee of 4), oc20; model card: `omni-flows model info omni-ads-1`",
                    packaged="omni-ads-1", content_hash=OMNI_ADS_1_HASH),
]


def _lookup(name: str) -> PretrainedModel | None:
    key = name.lower()
    for m in PRETRAINED:
        if key == m.name.lower() or key in (a.lower() for a in m.aliases):
            return m
    return None


def sevenn_weights_dir() -> Path | None:
    """sevenn/pretrained_potentials of the installed wheel, found without importing it."""
    spec = importlib.util.find_spec("sevenn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained_potentials"


def packaged_file(entry: PretrainedModel) -> Path | None:
    """The native checkpoint shipped inside the package, if ``entry`` is one."""
    if not entry.packaged:
        return None
    path = PACKAGED_WEIGHTS / entry.packaged / "model.safetensors"
    return path if path.is_file() else None


def model_card(name: str) -> str | None:
    """The model card (Markdown) shipped with a packaged model; None for the others."""
    entry = _lookup(name)
    if entry is None or not entry.packaged:
        return None
    card = PACKAGED_WEIGHTS / entry.packaged / "CARD.md"
    return card.read_text() if card.is_file() else None


def available_models() -> list[PretrainedModel]:
    """Pretrained models whose weights are installed on this machine."""
    root = sevenn_weights_dir()
    return [m for m in PRETRAINED if packaged_file(m) is not None
            or (m.sevenn_file and root is not None and (root / m.sevenn_file).is_file())]


def default_cache_dir() -> Path:
    home = os.environ.get("OMNI_FLOWS_HOME")
    # same default home as the application's Settings
    return (Path(home) if home else Path.home() / ".local" / "share" / "omni-flows") / "models"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def convert_sevenn_file(path: Path, name: str, cache_dir: Path | None = None) -> Path:
    """Convert a SevenNet ``.pth`` once; returns the cached native checkpoint."""
    from .header_file import read_header

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    target = cache_dir / f"{name}-{_file_digest(path)}.safetensors"
    if target.is_file():
        try:
            read_header(target)
            return target
        except Exception:
            target.unlink()  # a broken cache entry is re-made, never trusted
    from .checkpoint import save_checkpoint  # torch: only when converting
    from .sevenn_import import model_from_sevenn, read_sevenn_checkpoint

    model = model_from_sevenn(read_sevenn_checkpoint(str(path)), name=name)
    save_checkpoint(model, target, extra={"source": str(path)})
    return target


def resolve(name_or_path: str | os.PathLike, cache_dir: Path | None = None) -> Path:
    """Path of the native checkpoint for a pretrained name or a checkpoint file."""
    path = Path(name_or_path)
    if path.suffix in (".safetensors",) and path.is_file():
        return path
    if path.suffix in (".pth", ".pt") and path.is_file():
        return convert_sevenn_file(path, path.stem, cache_dir)
    entry = _lookup(str(name_or_path))
    if entry is not None and packaged_file(entry) is not None:
        return packaged_file(entry)
    root = sevenn_weights_dir()
    if (entry is not None and entry.sevenn_file and root is not None
            and (root / entry.sevenn_file).is_file()):
        return convert_sevenn_file(root / entry.sevenn_file, entry.name, cache_dir)
    names = ", ".join(m.name for m in available_models()) or "none (is the sevenn package installed?)"
    what = "file does not exist" if path.suffix else "is not a known model name"
    raise ModelNotFoundError(
        f"{str(name_or_path)!r} {what}. Available pretrained models: {names}; or give the path of "
        "an omni-flows checkpoint (.safetensors) or a SevenNet checkpoint (.pth)"
    )


def load_model(
    name_or_path: str | os.PathLike,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    cache_dir: Path | None = None,
    backend: str = "e3nn",
) -> OmniNet:
    """Load a pretrained model by name (``"7net-mf-0"``) or from a checkpoint file,
    with a kernel backend (see :mod:`omni_flows.model.backends`); ``dtype`` defaults
    to float32."""
    import torch

    from .backends import apply_backend
    from .checkpoint import load_checkpoint
    from .network import OmniNet

    dtype = dtype or torch.float32

    if isinstance(name_or_path, OmniNet):
        return apply_backend(name_or_path, backend)
    model = load_checkpoint(resolve(name_or_path, cache_dir))
    return apply_backend(model.to(device=device, dtype=dtype).eval(), backend)


def model_info(name: str) -> dict:
    """What ``omni-flows model info`` shows of a pretrained name or checkpoint path:
    architecture, tasks, elements, parameter counts, checkpoint hash and model card."""
    from .checkpoint import read_metadata
    from .committee import public_tasks

    path = resolve(name)
    model = load_model(path)
    groups = model.parameter_groups()
    cfg = model.config
    pretrained = {m.name: m.name for m in available_models()}
    pretrained.update({a: m.name for m in available_models() for a in m.aliases})
    info = {
        # a packaged model by its registered name; a file by its config's name
        "name": pretrained.get(name, cfg.name or name),
        "architecture": cfg.name,
        "checkpoint": str(path),
        "checkpoint_hash": read_metadata(path)["content_hash"],
        "tasks": public_tasks(cfg.tasks),  # committee members are rows of their task
        "committees": cfg.committees,  # task -> members and calibration scale (docs/uncertainty.md)
        "task_elements": cfg.task_elements,  # task -> the elements of its training data
        "elements": cfg.species,
        "cutoff": cfg.cutoff,
        "num_interactions": cfg.num_interactions,
        "lmax_edge": cfg.lmax_edge,
        "parity": cfg.edge_parity,
        "node_irreps": cfg.node_irreps,
        "self_connection": cfg.self_connection,
        "parameters": {
            "universal": sum(p.numel() for p in groups["universal"]),
            "task_specific": sum(p.numel() for p in groups["task_specific"]),
        },
    }
    card = model_card(name)  # packaged models ship a model card (data, recipe, metrics, use)
    if card is not None:
        info["model_card"] = card
    return info
