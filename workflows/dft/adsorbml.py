"""The AdsorbML success rate and the MLIP-DFT error of a validated screen.

AdsorbML (Lan et al., npj Comput. Mater. 9, 172 (2023), arXiv:2211.16486; the
evaluation script of fairchem's ``applications/AdsorbML``) defines, per
adsorbate-surface system: ML relaxes many placements; relaxed structures with
an anomaly (the adsorbate desorbed or dissociated, the surface reconstructed,
the adsorbate intercalated) are discarded; DFT single points (ML+SP) or
relaxations are run on the k lowest-energy ML structures, and the system's
energy is the lowest of those DFT energies. The system is a **success** when

    E_pred - E_ref <= 0.1 eV

with E_ref the lowest energy of the ground truth (there: dense DFT relaxations
of the same system, anomalies discarded). Being lower than E_ref counts as a
success. A system with no valid ML structure, or no DFT energy for it, counts
as a failure; the success rate is successes / systems.

Here, per (slab, adsorbate) of a screen (:class:`GPAWValidationDoc`):

- the candidates are the screen's **valid** placements (its anomaly checks:
  desorption, dissociation, reconstruction, intercalation); the K of lowest
  MLIP E_ads get DFT single points at the MLIP-relaxed geometries;
- E_pred is the DFT E_ads at the MLIP's best placement (top-1, ML+SP), and
  E_ref the lowest DFT E_ads among the K validated placements (no DFT
  relaxations: the reference is the best of what was validated, not a global
  minimum); success when E_pred - E_ref <= 0.1 eV;
- a (slab, adsorbate) asked for that has no valid placement or no DFT result
  counts as a failure.

So the success rate says how often the MLIP's first choice is, by DFT, within
0.1 eV of the best of its K first choices: with K = 1 it is 1 by construction.
The MLIP-DFT MAE is the mean |E_ads(MLIP) - E_ads(DFT)| over every validated
placement (``mae``), and over the best placements only (``mae_best``).
"""

SUCCESS_THRESHOLD = 0.1  # eV


def adsorbml_success(dft_at_mlip_best: float, lowest_dft: float,
                     threshold: float = SUCCESS_THRESHOLD) -> bool:
    """AdsorbML's criterion: E_pred - E_ref <= threshold (lower than E_ref succeeds)."""
    return dft_at_mlip_best - lowest_dft <= threshold


def campaign_summary(docs: list[dict], n_asked: int | None = None) -> dict:
    """Success rate and MAEs of validation documents (dicts of :class:`GPAWValidationDoc`).

    ``n_asked``: the (slab, adsorbate) pairs asked for, when some have no
    document (no valid placement, DFT failed): they count as failures.
    """
    n = max(n_asked or 0, len(docs))
    if n == 0:
        return {"success_rate": None, "n_targets": 0, "n_success": 0, "mae": None,
                "mae_best": None}
    errors = [abs(p["mlip_adsorption_energy"] - p["dft_adsorption_energy"])
              for d in docs for p in d["placements"]]
    best = [abs(d["mlip_adsorption_energy"] - d["dft_adsorption_energy"]) for d in docs]
    successes = sum(bool(d["adsorbml_success"]) for d in docs)
    return {
        "success_rate": successes / n,
        "n_targets": n,
        "n_success": successes,
        "mae": sum(errors) / len(errors) if errors else None,
        "mae_best": sum(best) / len(best) if best else None,
    }
