"""jobflow Makers and Flows: MLIP static/relax, surface and MOF adsorption, validation."""
