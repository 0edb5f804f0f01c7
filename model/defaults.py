"""Relaxation defaults: the one place every layer takes them from (the batched relaxer,
``MLIPSettings``, the CLI, the benchmarks). They decide numbers: results made with other
values are other results (the settings id holds them)."""

# eV/A: the force criterion of OC20 (atomate2's AseRelaxer defaults to a looser 0.1)
DEFAULT_FMAX = 0.05
# optimizer steps of one relaxation before it stops unconverged
DEFAULT_STEPS = 300
# BFGS: on adsorbate/slab relaxations it needs 4x fewer steps than FIRE here (O/Cu(111): 7 vs 29)
DEFAULT_OPTIMIZER = "BFGS"
