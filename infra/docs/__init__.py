"""Docs generated from the code (python -m infra.docs.<name>); a unit test keeps each one what its script writes."""
