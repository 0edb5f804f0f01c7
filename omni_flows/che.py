"""The computational hydrogen electrode: step free energies, limiting potentials, diagrams and
volcanoes from the adsorption free energies of a screen.

At pH 0 and potential U vs RHE a proton-electron pair has G = 1/2 G(H2) - eU (Nørskov
et al., J. Phys. Chem. B 108, 17886 (2004)), so a step that consumes n pairs has

    dG_i(U) = dG_i(0) + n_i e U.

Sign convention: U_L is the potential at which every electrochemical step is downhill.
For a reduction (n_i > 0) U_L = min_i(-dG_i(0) / n_i) = -max_i dG_i(0) / e for
one-electron steps; for an oxidation (n_i < 0) U_L = max_i(dG_i(0) / |n_i|). The step
that sets U_L is the potential-determining step (PDS); the theoretical overpotential
is U0 - U_L (reduction) or U_L - U0 (oxidation). Chemical steps (n_i = 0) do not move
with U: an uphill one is reported as a thermochemical barrier, not as the PDS.

Adsorption free energies: the screen's ``adsorption_free_energy`` (MLIP vibrations,
``--free-energy``) when stored; otherwise E_ads plus the textbook dZPE - TdS
corrections below, and the output says which was used for every number.

Solvation (:class:`Solvation`): a screen is in vacuum. Works that compare with
experiment shift the adsorbates that hydrogen-bond to water (OH*, OOH*) by a constant;
which shifts a number carries is its convention, printed, written and stored with it,
and two numbers are compared only under one convention (and one coverage, one
functional). Measured on Pt(111) (issue 29): OH* -0.50, OOH* -0.25 eV move 7net-mf-0's
U_L from 0.42 to ~0.69 V and vacuum GPAW RPBE's from 0.16 to ~0.66 V.
"""

from dataclasses import dataclass, field

import numpy as np

from omni_flows.db_schemas.legacy import identity_of
from omni_flows.workflows.errors import WorkflowInputError
from omni_flows.workflows.thermo.reactions import ReactionNetwork, adsorbate_offset, gas_free_energy

@dataclass(frozen=True)
class MemberSpread:
    """One stored quantity's committee: ``deviations`` = scale x (x_k - mean x), eV, and
    the committee they belong to (draws of one committee are correlated)."""

    committee: tuple
    deviations: np.ndarray

    @property
    def std(self) -> float:
        return float(np.std(self.deviations, ddof=1))

    @classmethod
    def of(cls, doc: dict) -> "MemberSpread | None":
        """From an adsorption document's members and scale; None without them."""
        members, scale = doc.get("adsorption_energy_members"), doc.get("committee_scale")
        if not members or len(members) < 2 or scale is None:
            return None
        x = np.asarray(members, dtype=float)
        p = identity_of(doc.get("provenance") or {})
        committee = (p["model_name"], p["task"], p["checkpoint_hash"], len(x))
        return cls(committee, float(scale) * (x - x.mean()))


@dataclass(frozen=True)
class SurfaceUncertainty:
    """sigma of every dG (None: no members) and, where every intermediate has members,
    of every step and of U_L; the probabilities that the surface is the campaign's best
    (None unless every surface has members) and that its PDS is the named one."""

    delta_g_std: dict[str, float | None]
    step_std: list[float] | None = None
    limiting_potential_std: float | None = None
    p_best: float | None = None
    p_pds: float | None = None


# eV, dZPE - TdS at 298 K relative to H2O(l) and H2: OH* 0.35, O* 0.05, OOH* 0.40 (Nørskov
# et al. 2004; Man et al., ChemCatChem 3, 1159 (2011)); H* 0.24 (Nørskov et al.,
# J. Electrochem. Soc. 152, J23 (2005)). None for the CO2RR and NRR intermediates: those
# need the screen's own vibrations.
TEXTBOOK_CORRECTIONS: dict[str, float] = {"OH": 0.35, "O": 0.05, "OOH": 0.40, "H": 0.24}
# OOH* - OH* in eV, the universal scaling of Man et al. 2011 (and Viswanathan et al., ACS
# Catal. 2, 1654 (2012)); used for a volcano line when fewer than two surfaces are screened
DEFAULT_OOH_OH_OFFSET = 3.2
# dG_O* ~ 2 dG_OH* (O binds with twice the bond order; Man et al. 2011, approximate): with the
# line above, the universal ORR/OER volcano drawn for reference beside a screen's own fits
UNIVERSAL_OXYGEN_SCALING = {"OOH": (1.0, DEFAULT_OOH_OH_OFFSET), "O": (2.0, 0.0)}

MLIP = "MLIP vibrations"
TEXTBOOK = "textbook correction"

# eV added to an adsorbate's free energy for the water around it: name -> (shifts, source).
# Explicit-water DFT puts OH* about 0.5 eV and OOH* about 0.25 eV lower than in vacuum
# (hydrogen bonds to the water layer); O* is not shifted.
SOLVATION_PRESETS: dict[str, tuple[dict[str, float], str]] = {
    "none": ({}, "vacuum, no solvation"),
    "viswanathan2012": (
        {"OH": -0.50, "OOH": -0.25},
        "water stabilisation of OH* and OOH* as used by Viswanathan, Hansen, Rossmeisl, "
        "Nørskov, J. Phys. Chem. Lett. 3, 2948 (2012)"),
}


@dataclass(frozen=True)
class Solvation:
    """A solvation convention: eV added to the free energy of each named intermediate
    (names without '*'); ``name`` is a preset's or 'custom'."""

    name: str = "none"
    shifts: dict[str, float] = field(default_factory=dict)
    source: str = SOLVATION_PRESETS["none"][1]

    @classmethod
    def parse(cls, text: str | None, network: ReactionNetwork) -> "Solvation":
        """'none' (also None: vacuum), a preset (:data:`SOLVATION_PRESETS`) or
        'OH=-0.5,OOH=-0.25' (eV per intermediate of ``network``); anything else is refused,
        naming what is wrong."""
        text = (text or "none").strip()
        if text in SOLVATION_PRESETS:
            shifts, source = SOLVATION_PRESETS[text]
            return cls(text, dict(shifts), source)
        if "=" not in text:
            raise WorkflowInputError(
                f"--solvation {text!r}: use none, a preset ({', '.join(SOLVATION_PRESETS)}) or "
                "shifts in eV per intermediate, e.g. OH=-0.5,OOH=-0.25")
        shifts = {}
        for item in text.split(","):
            name, _, value = item.partition("=")
            name = adsorbate_key(name.strip())
            if name not in network.intermediates:
                raise WorkflowInputError(
                    f"--solvation: {name or item!r} is not an intermediate of "
                    f"{network.name.upper()}; use {', '.join(network.intermediates)}")
            if name in shifts:
                raise WorkflowInputError(f"--solvation: {name} is given twice")
            try:
                shift = float(value)
            except ValueError:
                shift = float("nan")
            if not np.isfinite(shift):
                raise WorkflowInputError(
                    f"--solvation: {name}={value.strip()!r} is not a number of eV, e.g. "
                    f"{name}=-0.5")
            shifts[name] = shift
        return cls("custom", shifts, "given with --solvation")

    def shift(self, name: str) -> float:
        return self.shifts.get(name, 0.0)

    @property
    def label(self) -> str:
        """One line: the name, every shift and the source."""
        if not self.shifts:
            return f"solvation {self.name}: {self.source}"
        values = ", ".join(f"{n}* {v:+.2f}" for n, v in self.shifts.items())
        return f"solvation {self.name}: {values} eV ({self.source})"

    def as_dict(self) -> dict:
        return {"name": self.name, "shifts": {f"{n}*": v for n, v in self.shifts.items()},
                "source": self.source}

    @property
    def tag(self) -> str:
        """For file names: '' in vacuum, the preset's name, or the shifts."""
        if self.name == "none":
            return ""
        if self.name != "custom":
            return self.name
        return "_".join(f"{n}{v:+.2f}" for n, v in self.shifts.items())


def adsorbate_key(name: str) -> str:
    """'*OH', 'OH*', 'OH' -> 'OH' (OC20 names mark the binding atom with '*')."""
    return name.replace("*", "")


@dataclass
class SurfaceFreeEnergies:
    """Adsorption free energies (eV, on the basis scale of ``reactions``, solvation shifts
    included) of one surface and settings; the coverage (ML) each was screened at."""

    surface: str
    values: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    coverages: dict[str, float | None] = field(default_factory=dict)
    spreads: dict[str, MemberSpread | None] = field(default_factory=dict)  # committee, if any
    slab_id: str = ""
    settings_id: str = ""

    def coverage_label(self) -> str:
        """'0.25' when every intermediate has one coverage, else 'OH 0.25, O 0.50'."""
        values = set(self.coverages.values())
        if len(values) == 1:
            return _fmt_ml(values.pop())
        return ", ".join(f"{n} {_fmt_ml(c)}" for n, c in self.coverages.items())


def _fmt_ml(value: float | None) -> str:
    return "?" if value is None else f"{value:.3g}"


def free_energies_from_documents(docs: list[dict], network: ReactionNetwork,
                                 solvation: Solvation = Solvation(),
                                 ) -> tuple[list[SurfaceFreeEnergies], dict[str, list[str]]]:
    """One entry per surface and settings that has every intermediate of ``network`` with a
    valid placement, and the intermediates each other surface lacks; each free energy
    shifted by ``solvation``.

    ``docs``: ``adsorption_best`` documents (adsorbate, slab_id, settings_id, bulk_formula,
    miller_index, adsorption_energy and, when the screen ran with --free-energy,
    adsorption_free_energy; with a committee, adsorption_energy_members and
    committee_scale: :class:`MemberSpread`). Results of other settings (another ``settings_id``) are
    another entry, labelled with their settings id; two results of one adsorbate name
    under the same settings (a built-in and a file's) are refused: filter one out.
    """
    wanted = set(network.intermediates)
    groups: dict[tuple[str, str], dict[str, dict]] = {}
    for doc in docs:
        key = adsorbate_key(doc["adsorbate"])
        usable = doc.get("adsorption_energy") is not None and doc.get("valid") is not False
        if key not in wanted or not usable:
            continue
        group = (doc.get("slab_id", surface_label(doc)), doc.get("settings_id") or "")
        if key in groups.setdefault(group, {}):
            raise WorkflowInputError(
                f"{group[0]} has several {key} results with settings {group[1] or '-'} "
                f"({groups[group][key].get('adsorbate_id')}, {doc.get('adsorbate_id')}); "
                "select one with --filter, e.g. '{\"adsorbate_id\": ...}'")
        groups[group][key] = doc
    labels = {g: surface_label(next(iter(found.values()))) for g, found in groups.items()}
    values = list(labels.values())
    by_surface = {}
    for g, found in groups.items():
        label = labels[g]
        if values.count(label) > 1:
            same_slab = sum(other[0] == g[0] for other in groups) > 1
            label += f" [{g[1]}]" if same_slab else f" [{g[0]}]"
        by_surface[label] = found
    out, incomplete = [], {}
    for surface, found in sorted(by_surface.items()):
        if set(found) != wanted:
            incomplete[surface] = [n for n in network.intermediates if n not in found]
            continue
        first = next(iter(found.values()))
        entry = SurfaceFreeEnergies(surface, slab_id=first.get("slab_id", ""),
                                    settings_id=first.get("settings_id") or "")
        for name in network.intermediates:
            doc = found[name]
            if doc.get("adsorption_free_energy") is not None:
                value, source = doc["adsorption_free_energy"], MLIP
            elif name in TEXTBOOK_CORRECTIONS:
                value, source = doc["adsorption_energy"] + TEXTBOOK_CORRECTIONS[name], TEXTBOOK
            else:
                raise WorkflowInputError(
                    f"{name}* on {surface} has no adsorption free energy and there is no textbook "
                    "correction for it: screen it with --free-energy")
            entry.values[name] = value + adsorbate_offset(name) + solvation.shift(name)
            entry.sources[name] = source
            entry.coverages[name] = doc.get("coverage_ml")
            entry.spreads[name] = MemberSpread.of(doc)  # a free energy moves with its E_ads
        out.append(entry)
    return out, incomplete


def surface_label(doc: dict) -> str:
    hkl = "".join(str(i) for i in doc.get("miller_index", ()))
    return f"{doc.get('bulk_formula', '?')}({hkl})"


@dataclass(frozen=True)
class CHEResult:
    """Step free energies at U = 0 and what follows from them."""

    surface: str
    network: ReactionNetwork
    step_free_energies: tuple[float, ...]
    limiting_potential: float | None
    potential_determining_step: int | None
    equilibrium_potential: float

    @property
    def overpotential(self) -> float | None:
        if self.limiting_potential is None:
            return None
        sign = 1 if self.network.is_reduction else -1
        return sign * (self.equilibrium_potential - self.limiting_potential)

    def step_free_energies_at(self, potential: float) -> np.ndarray:
        n = np.array([s.electrons for s in self.network.steps])
        return np.asarray(self.step_free_energies) + n * potential

    def states_at(self, potential: float) -> np.ndarray:
        """Free energies of the states (initial state at 0), eV."""
        return np.concatenate([[0.0], np.cumsum(self.step_free_energies_at(potential))])

    @property
    def chemical_barriers(self) -> list[int]:
        """Uphill steps that do not involve a proton-electron pair."""
        return [i for i, (s, g) in enumerate(zip(self.network.steps, self.step_free_energies))
                if s.electrons == 0 and g > 0]


def species_free_energy(species, values: dict[str, float]) -> float:
    if species.phase == "ads":
        return values[species.name]
    if species.phase in ("g", "l"):
        return gas_free_energy(species)
    return 0.0  # free site; a pair is 1/2 H2 (0 on the basis scale) at U = 0


def analyse(network: ReactionNetwork, values: dict[str, float], surface: str = "") -> CHEResult:
    """dG of every step at U = 0, the limiting potential and the PDS."""
    missing = sorted(set(network.intermediates) - set(values))
    if missing:
        raise WorkflowInputError(f"{surface or 'surface'}: no free energy for "
                                 f"{', '.join(m + '*' for m in missing)}")
    dg = tuple(
        sum(species_free_energy(s, values) for s in step.products)
        - sum(species_free_energy(s, values) for s in step.reactants)
        for step in network.steps
    )
    onsets = [(-g / step.electrons, i) for i, (g, step) in enumerate(zip(dg, network.steps))
              if step.electrons != 0]
    if not onsets:
        u_l, pds = None, None
    else:
        u_l, pds = min(onsets) if network.is_reduction else max(onsets)
    return CHEResult(surface, network, dg, u_l, pds, network.equilibrium_potential())


@dataclass(frozen=True)
class LinearFit:
    """y = slope * x + intercept over ``n`` surfaces; ``mae`` in eV."""

    y: str
    x: str
    slope: float
    intercept: float
    n: int
    mae: float

    def __call__(self, x):
        return self.slope * np.asarray(x) + self.intercept


def scaling_relations(entries: list[SurfaceFreeEnergies], network: ReactionNetwork,
                      ) -> dict[str, LinearFit]:
    """Each intermediate fitted linearly against the network's descriptor (>= 2 surfaces).
    With fewer surfaces the ORR/OER OOH line falls back to the universal OOH = OH + 3.2 eV."""
    x_name = network.descriptor
    fits = {}
    x = np.array([e.values[x_name] for e in entries])
    for name in network.intermediates:
        if name == x_name:
            continue
        y = np.array([e.values[name] for e in entries])
        if len(entries) >= 2 and np.ptp(x) > 1e-6:
            slope, intercept = np.polyfit(x, y, 1)
            mae = float(np.abs(slope * x + intercept - y).mean())
            fits[name] = LinearFit(name, x_name, float(slope), float(intercept), len(x), mae)
        elif name == "OOH" and x_name == "OH":
            fits[name] = LinearFit(name, x_name, 1.0, DEFAULT_OOH_OH_OFFSET, 0, float("nan"))
    return fits


def volcano_line(network: ReactionNetwork, fits: dict[str, LinearFit],
                 x: np.ndarray) -> np.ndarray | None:
    """U_L along the descriptor, the other intermediates from the scaling relations;
    None when an intermediate has no fit."""
    others = [n for n in network.intermediates if n != network.descriptor]
    if any(n not in fits for n in others):
        return None
    out = []
    for xi in x:
        values = {network.descriptor: float(xi), **{n: float(fits[n](xi)) for n in others}}
        out.append(analyse(network, values).limiting_potential)
    return np.array(out, dtype=float)


def _caption(fig, caption: str) -> None:
    """The convention under the axes (solvation, coverage): every figure says its own."""
    if caption:
        fig.text(0.01, 0.01, caption, fontsize=7, ha="left", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    else:
        fig.tight_layout()


def free_energy_diagram(results: list[CHEResult], potential: float = 0.0, caption: str = ""):
    """Step-line free-energy diagram of each surface at ``potential`` (V vs RHE); also at U0
    in a second panel, ``caption`` below. A matplotlib Figure (object API: no global
    backend is set)."""
    from matplotlib.figure import Figure

    network = results[0].network
    potentials = [potential, results[0].equilibrium_potential]
    fig = Figure(figsize=(11, 4.5))
    for ax, u in zip(fig.subplots(1, 2, sharey=False), potentials):
        for r in results:
            g = r.states_at(u)
            xs = np.repeat(np.arange(len(g)), 2) + np.tile([-0.3, 0.3], len(g))
            lines = ax.plot(xs, np.repeat(g, 2), lw=2,
                            label=f"{r.surface}  U_L={_fmt(r.limiting_potential)} V")
            for i in range(len(g) - 1):  # dotted connectors from bar end to bar start
                ax.plot([i + 0.3, i + 0.7], g[i:i + 2], ls=":", color=lines[0].get_color(), lw=1)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(range(len(network.steps) + 1), _state_labels(network), rotation=30,
                      ha="right", fontsize=8)
        ax.set_ylabel("G (eV)")
        ax.set_title(f"{network.name.upper()} at U = {u:.2f} V vs RHE")
    fig.axes[0].legend(fontsize=7)
    _caption(fig, caption)
    return fig


def volcano_plot(results: list[CHEResult], entries: list[SurfaceFreeEnergies],
                 fits: dict[str, LinearFit], caption: str = "",
                 uncertainty: list[SurfaceUncertainty] | None = None):
    """Limiting potential of each surface against the descriptor, with the scaling-relation
    volcano line and U0; error bars of 1 sigma (descriptor and U_L) where ``uncertainty``
    has them. A matplotlib Figure (object API)."""
    from matplotlib.figure import Figure

    network = results[0].network
    x_name = network.descriptor
    xs = np.array([e.values[x_name] for e in entries])
    ys = np.array([r.limiting_potential for r in results], dtype=float)
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    span = max(np.ptp(xs), 1.0)
    grid = np.linspace(xs.min() - 0.5 * span, xs.max() + 0.5 * span, 200)
    line = volcano_line(network, fits, grid)
    if line is not None:
        ax.plot(grid, line, color="k", lw=1.5, label="scaling relations of these surfaces")
    if network.descriptor == "OH" and set(network.intermediates) == {"OH", "O", "OOH"}:
        universal = {n: LinearFit(n, "OH", a, b, 0, float("nan"))
                     for n, (a, b) in UNIVERSAL_OXYGEN_SCALING.items()}
        ax.plot(grid, volcano_line(network, universal, grid), color="grey", lw=1, ls="-.",
                label="universal: OOH = OH + 3.2, O = 2 OH")
    ax.axhline(results[0].equilibrium_potential, color="grey", ls="--", lw=1, label="U0")
    ax.scatter(xs, ys, zorder=3)
    for x, y, u in zip(xs, ys, uncertainty or ()):
        x_err, y_err = u.delta_g_std.get(x_name), u.limiting_potential_std
        if x_err is not None or y_err is not None:  # no members: no bar (never a fake 0)
            ax.errorbar(x, y, xerr=x_err, yerr=y_err, fmt="none", ecolor="C0", capsize=3)
    for x, y, r in zip(xs, ys, results):
        ax.annotate(r.surface, (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    ax.set_xlabel(f"ΔG({x_name}*) (eV)")
    ax.set_ylabel("limiting potential U_L (V vs RHE)")
    ax.set_title(f"{network.name.upper()} volcano")
    ax.legend(fontsize=8)
    _caption(fig, caption)
    return fig


def scaling_plot(entries: list[SurfaceFreeEnergies], fits: dict[str, LinearFit],
                 network: ReactionNetwork, caption: str = ""):
    """Each intermediate against the descriptor with its fitted line."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    x = np.array([e.values[network.descriptor] for e in entries])
    for name, fit in fits.items():
        y = [e.values[name] for e in entries]
        points = ax.scatter(x, y, label=f"{name}*: {fit.slope:.2f} x + {fit.intercept:.2f}")
        grid = np.linspace(x.min() - 0.2, x.max() + 0.2, 10)
        ax.plot(grid, fit(grid), color=points.get_facecolor()[0])
    ax.set_xlabel(f"ΔG({network.descriptor}*) (eV)")
    ax.set_ylabel("ΔG (eV)")
    ax.legend(fontsize=8)
    _caption(fig, caption)
    return fig


def save_figure(fig, path) -> None:
    """Write a Figure as PNG through the Agg canvas (no pyplot, no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).print_png(str(path))


def _state_labels(network: ReactionNetwork) -> list[str]:
    labels = [" + ".join(s.label for s in network.steps[0].reactants if s.phase != "pair")]
    labels += [" + ".join(s.label for s in step.products if s.phase != "pair")
               for step in network.steps]
    return labels


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
