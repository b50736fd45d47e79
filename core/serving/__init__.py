"""Work in the background: the dashboard's job queue and its worker, the Ray adapter that
runs grids and queued jobs on a cluster, CAM requests drawn by a worker, and the next-batch
backtest and a pool's ranking run as processes of their own (detached.py).
May import: every package below it (base .. answers).
"""
