"""The choices a user has for a relaxation and its kernels, and their defaults: the one
place every layer takes them from (the batched relaxer, ``MLIPSettings``, the CLI, the
benchmarks). Names only, no torch: settings are checked against them without it.

The defaults decide numbers: results made with other values are other results (the
settings id holds them).
"""

# the kernel backends of omni_flows.model.backends.apply_backend
BACKENDS = ("e3nn", "compile", "cueq")
# the optimizers of omni_flows.model.batch_relax.relax_batch (ASE's, run per structure)
OPTIMIZERS = ("BFGS", "FIRE")

# eV/A: the force criterion of OC20 (atomate2's AseRelaxer defaults to a looser 0.1)
DEFAULT_FMAX = 0.05
# optimizer steps of one relaxation before it stops unconverged
DEFAULT_STEPS = 300
# BFGS: on adsorbate/slab relaxations it needs 4x fewer steps than FIRE here (O/Cu(111): 7 vs 29)
DEFAULT_OPTIMIZER = "BFGS"
