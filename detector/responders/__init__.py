"""Responders: the side effects on AWS that contain an agent session (see approval.py)."""
