"""make bench: what a heartbeat costs, measured side by side in one run."""
