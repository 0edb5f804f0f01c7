"""Thermochemistry: MLIP vibrations, free energies, gas references of adsorption energies and electrochemical reaction networks."""
