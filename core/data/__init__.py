"""Labelled images: dataset folders and their fingerprints, decoded image arrays, the fixed
holdout / validation / pool splits and nested slices, uploads, augmentation policies.
May import: base.
"""
