#!/usr/bin/env bash
# README's main command: a small real screen of CO, O and H on Pt(111) and Cu(111)
# (3x3 cells of >= 8 A, 4 layers, bottom 2 fixed; 4 placements per adsorbate and slab)
# on the embedded database: 15 jobs, 74 s on 2 quiet CPU cores. Ends with a ranked table
# and screen-results/surfaces-<settings id>-Pt-Cu-111-CO-O-H.png; running it again reuses
# every stored result (~12 s).
set -euo pipefail
omni-flows screen surfaces --bulk Pt Cu --facets 111 --adsorbates CO O H \
    --max-placements 4 --out screen-results "$@"
