"""How Much Data? engine: plain Python with no Streamlit import, in layered packages.

    base < data < models < store < engine < answers < serving < present < cli

A package imports only packages to its left (tests/test_layers.py checks it, and that no import
cycle exists). Heavy libraries (torch, lightning, timm) are imported inside the functions that
need them, so ``python -m core --help`` and the home page open fast.
"""
