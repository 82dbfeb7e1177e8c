"""Pulumi ComponentResources, one per concern; each parents its children and registers its outputs."""
