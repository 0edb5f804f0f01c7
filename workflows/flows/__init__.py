"""jobflow Makers and Flows: the plan of a screen, surface and MOF adsorption, campaigns, validation, the MLIP relax/static Makers."""
