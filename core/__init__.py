"""How Much Data? engine: datasets, nested slices, backbones, training, evaluation, CAM, run cache.

Plain Python with no Streamlit import. Heavy libraries (torch, lightning, timm) are imported
inside the functions that need them, so ``python -m core --help`` and the home page open fast.
"""
