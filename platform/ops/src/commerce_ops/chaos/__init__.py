"""`ops chaos` and tests/chaos: fault injection against a throw-away platform, with invariants checked after."""
