# run on the lent H200 from the repository root, the wheels of the packages it lacked in .whl/
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
timeout 190 python3 -m bench.gpu "$OUT"
