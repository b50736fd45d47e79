set -x
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, lightning, timm, torchvision; print(torch.__version__, lightning.__version__, timm.__version__, torchvision.__version__, torch.cuda.is_available())"
C=/tmp/gpucache
T0=$(date +%s.%N)
python3 -m core --cache $C run --json --data data/fashion-mnist --mode finetune --slice 100% --epochs 3 --seed 0 > $OUT/finetune.json; echo "finetune rc=$?"
T1=$(date +%s.%N); echo "finetune wall $(echo "$T1-$T0" | bc)"
python3 -m core --cache $C run --json --data data/fashion-mnist --mode frozen --slice 20% --seed 0 > $OUT/frozen.json; echo "frozen rc=$?"
T2=$(date +%s.%N); echo "frozen wall $(echo "$T2-$T1" | bc)"
RUN=$(python3 -c "import json;print(json.load(open('$OUT/finetune.json'))['run_id'])" 2>/dev/null || python3 -c "import json;d=json.load(open('$OUT/finetune.json'));print(list(d)[:20])")
echo "run=$RUN"
python3 -m core --cache $C cam --json --run $RUN --misclassified 4 --method gradcam --out /tmp/cams > $OUT/cam.json; echo "cam rc=$?"
python3 -m core --cache $C export --json --run $RUN --format onnx --out /tmp/model.onnx > $OUT/export.json; echo "export rc=$?"
python3 -m core --cache $C run --json --data data/fashion-mnist --mode finetune --slice 100% --epochs 3 --seed 0 > $OUT/finetune-again.json; echo "cached rc=$?"
T3=$(date +%s.%N); echo "rest wall $(echo "$T3-$T2" | bc)"
head -c 1500 $OUT/finetune.json; echo; head -c 600 $OUT/cam.json; echo; head -c 800 $OUT/export.json
