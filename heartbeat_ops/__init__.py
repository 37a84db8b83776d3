"""Operator commands for a fleet of task runners: list, show, terminate, reset, forget, summary, sweep."""
