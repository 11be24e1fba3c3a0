"""TrailGuard: watches CloudTrail for AI coding agents acting outside their task."""

__version__ = "0.1.0"
