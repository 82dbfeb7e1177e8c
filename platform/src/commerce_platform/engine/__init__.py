"""The Python half of the repo's Pulumi language host: it runs inside the program's own environment (see runner.py)."""
