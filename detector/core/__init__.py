"""The pure core: parsing, attribution, scope checks, scoring and decisions.

Nothing here performs I/O, reads a clock or logs. Time is passed in; results are returned.
"""
