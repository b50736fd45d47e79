"""Training: cached features, the Lightning loop, heads solved to convergence, the pipeline
that prepares, trains and commits runs (alone or heads together), and export of a run's
verified model. May import: base, data, models, store.
"""
