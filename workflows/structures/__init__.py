"""Structures a screen is built from: bulks, slabs, adsorption sites, placements, adsorbates, clusters, MOF frameworks, shared geometry and the anomaly checks."""
