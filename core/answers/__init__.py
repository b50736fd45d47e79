"""What the runs answer: learning curves and their intervals, the label budget and its
allocation, calibration and thresholds, trust, the holdout audit, second test sets and
Grad-CAM. May import: base, data, models, store, engine.
"""
