"""Learned baselines: what is normal for a role, an agent and a kind of task.

`protocol` says what a trainable model provides; the models, their artifacts and the
training and evaluation commands build on it. Scoring is pure (it runs inside the
pipeline, through `detector.core.learned.Baseline`); files are read and written only by
`artifact` and `train`.
"""
