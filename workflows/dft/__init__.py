"""DFT of a screen's results: GPAW (run in its own process), PySCF and VASP inputs, and the AdsorbML success rate."""
