"""Error bars of the computational hydrogen electrode from a task committee (issue 27).

A stored adsorption energy of a model with a committee carries each member's own E_ads
(``adsorption_energy_members``, raw) and the committee's calibration factor
(``committee_scale``); its sigma is scale x the members' standard deviation (ddof 1,
:func:`omni_flows.model.committee.spread`). A free energy moves with its E_ads: the
vibrational or textbook correction and the solvation shift are one number for every
member. Results without members (older documents, models without a committee) get no
sigma and no probability: None, never 0.

The members of one committee err together across surfaces and adsorbates (a member that
binds O too strongly on one surface does so on the next; within one surface the OH*/O*
difference of a step cancels what both share). Every derived number is therefore taken
over correlated draws of all surfaces x intermediates at once,

    G = mu + sum_k z_k d_k / sqrt(K - 1),   d_k = scale (x_k - mean x),   z_k ~ N(0, 1),

one z_k per member and draw, shared by every quantity of that committee (model, task,
checkpoint); mu is the model's own value, the one the report prints. The draws have
mean mu and covariance scale^2 x the members' sample covariance, so each dG's sigma is
the stored one; U_L, the potential-determining step (PDS) and the best surface are
evaluated in every draw (they are not linear in the dGs).

Why draws and not member by member: the raw members are not calibrated (omni-ads-0's
gpaw_rpbe committee spreads by meV against errors of 0.1-0.6 eV; scale 29-276,
docs/uncertainty.md), and K = 4 members give probabilities in steps of 1/4. The draws
carry the calibrated scale and the members' correlations and give smooth
probabilities. They are drawn in antithetic pairs (z, -z): their mean is exactly mu,
and two surfaces that mirror each other get P(best) = 0.5 exactly. ``DRAWS`` = 4000
bounds the Monte-Carlo error of a probability by 0.008; ``SEED`` is fixed, so a report
is reproducible.

"Best" is the report's ranking: the lowest theoretical overpotential, i.e. the highest
U_L of a reduction (ORR, HER, CO2RR, NRR) and the lowest of an oxidation (OER). Surfaces
tied in a draw share its credit.
"""

import numpy as np

from omni_flows.che import MemberSpread, SurfaceUncertainty, analyse  # noqa: F401 (re-exported)

DRAWS = 4000  # Monte-Carlo error of a probability <= sqrt(0.25 / 4000) = 0.008
SEED = 27  # fixed: the same stored results give the same report


def step_map(network) -> tuple[np.ndarray, np.ndarray]:
    """(A, c) with step dG = A @ values + c (values in ``network.intermediates`` order):
    the analysis is linear in the values, so A and c come from :func:`analyse` itself."""
    names = network.intermediates
    c = np.array(analyse(network, dict.fromkeys(names, 0.0)).step_free_energies)
    columns = [np.array(analyse(network, {m: float(m == n) for m in names}).step_free_energies)
               - c for n in names]
    return np.stack(columns, axis=1), c


def limiting_potentials(network, step_dg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """U_L and PDS (step index) of step dGs (..., steps), as :func:`analyse` picks them:
    the lowest onset of a reduction (first on a tie), the highest of an oxidation (last)."""
    electrons = np.array([s.electrons for s in network.steps], dtype=float)
    echem = np.flatnonzero(electrons)
    onsets = -step_dg[..., echem] / electrons[echem]
    if network.is_reduction:
        pick = np.argmin(onsets, axis=-1)
    else:
        pick = onsets.shape[-1] - 1 - np.argmax(onsets[..., ::-1], axis=-1)
    u_l = np.take_along_axis(onsets, pick[..., None], axis=-1)[..., 0]
    return u_l, echem[pick]


def draws(entries, network, n: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """Correlated free energies (n, surfaces, intermediates), eV (see the module)."""
    names = network.intermediates
    mu = np.array([[e.values[m] for m in names] for e in entries], dtype=float)
    out = np.repeat(mu[None], n, axis=0)
    spreads = [(s, i, e.spreads[m]) for s, e in enumerate(entries)
               for i, m in enumerate(names) if e.spreads.get(m) is not None]
    rng = np.random.default_rng(seed)
    for committee in sorted({sp.committee for *_, sp in spreads}, key=repr):
        k = committee[-1]
        half = rng.standard_normal((n // 2, k))
        z = np.concatenate([half, -half]) / np.sqrt(k - 1)
        for s, i, sp in spreads:
            if sp.committee == committee:
                out[:, s, i] += z @ sp.deviations
    return out


def campaign_uncertainty(entries, results, network, n: int = DRAWS,
                         seed: int = SEED) -> list[SurfaceUncertainty]:
    """One :class:`SurfaceUncertainty` per entry (with ``results`` its analyses)."""
    names = network.intermediates
    a, c = step_map(network)
    complete = [all(e.spreads.get(m) is not None for m in names) for e in entries]
    if not any(complete):
        return [SurfaceUncertainty({m: _std(e, m) for m in names}) for e in entries]
    sample = draws(entries, network, n, seed)
    u_l, pds = limiting_potentials(network, sample @ a.T + c)  # (n, surfaces)
    sign = 1.0 if network.is_reduction else -1.0
    eta = sign * (network.equilibrium_potential() - u_l)
    best = np.isclose(eta, eta.min(axis=1, keepdims=True), rtol=0, atol=1e-12)
    p_best = (best / best.sum(axis=1, keepdims=True)).mean(axis=0)
    out = []
    for s, (e, r, full) in enumerate(zip(entries, results, complete)):
        if not full:
            out.append(SurfaceUncertainty({m: _std(e, m) for m in names}))
            continue
        members = np.stack([e.spreads[m].deviations for m in names], axis=1)  # (K, I)
        named = r.potential_determining_step
        out.append(SurfaceUncertainty(
            delta_g_std={m: _std(e, m) for m in names},
            step_std=[float(v) for v in np.std(members @ a.T, axis=0, ddof=1)],
            limiting_potential_std=float(np.std(u_l[:, s])),
            p_best=float(p_best[s]) if all(complete) else None,
            p_pds=None if named is None else float(np.mean(pds[:, s] == named)),
        ))
    return out


def _std(entry, name: str) -> float | None:
    spread = entry.spreads.get(name)
    return None if spread is None else spread.std
