"""Checks every implementation of an extension point passes (see conformance.py)."""
