"""The fleet simulator: the real handler, store and sweeper on a controllable clock (see fleet.py)."""
