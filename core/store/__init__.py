"""The run store: a run's configuration and id, its typed record on disk, the folders of
complete runs, scoring predictions, the cache check (doctor), and the run table with its
experiment labels. May import: base, data, models.
"""
