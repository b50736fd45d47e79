"""Work in the background: the dashboard's job queue and its worker, the Ray adapter that
runs grids and queued jobs on a cluster, and CAM requests drawn by a worker.
May import: every package below it (base .. answers).
"""
