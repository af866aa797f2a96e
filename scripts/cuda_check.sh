#!/usr/bin/env bash
# The CUDA paths in one go, for a machine with a GPU: the CUDA tests (training under
# fp32/bf16/fp16, planned == step-by-step attention, GPU->CPU checkpoints, batched
# beam search), the planned against the step-by-step teacher-forced recurrence, the
# benchmark at JoeyNMT's batch of 64 sentences and at 8k-token batches, and the
# quickstart trained under torchrun (NCCL), resumed, evaluated and used to translate.
#
#   bash scripts/cuda_check.sh [TRAINED_RUN_OR_CHECKPOINT] [OUT_DIR]
#
# Multi30k is read from $MULTI30K (default data/multi30k, as configs/multi30k_de_en.yaml;
# fetch it with `seq2seq data download multi30k data/multi30k`).
set -uo pipefail
m30k=${MULTI30K:-data/multi30k}
run=${1:-runs/multi30k_de_en}
out=${2:-cuda-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
status=0
step() { echo; echo "== $* ($(date +%T))"; }
check() { "$@" || { echo "!! failed ($?): $*"; status=1; }; }

step versions
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"

step "CUDA tests"
check python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py

step "planned against step-by-step teacher-forced recurrence, fp32, batches of 64"
check python3 scripts/step_time.py configs/multi30k_de_en.yaml data.root="$m30k" device=cuda \
    tokenizer.sampling_alpha=0 --amp none --batches 30 --ab-step-path 6

step "benchmark: batches of 64 sentences (JoeyNMT's setting)"
check python3 scripts/benchmark.py configs/multi30k_de_en.yaml data.root="$m30k" \
    --amp none bf16 fp16 \
    --steps 50 --warmup 10 --run "$run" --output "$out/bench_b64.json"

step "benchmark: batches of 8192 target tokens, decoding batches of 512"
check python3 scripts/benchmark.py configs/multi30k_de_en.yaml data.root="$m30k" \
    train.batch_tokens=8192 \
    --amp bf16 --steps 30 --warmup 5 --run "$run" --decode-batch 512 \
    --output "$out/bench_tok8k.json"

step "quickstart under torchrun (NCCL): 1 epoch, --resume to 2, evaluate, translate"
q=$(mktemp -d)
check torchrun --standalone --nproc_per_node=1 -m seq2seq train configs/quickstart.yaml \
    run_dir="$q/run" device=cuda train.epochs=1 --quiet
check torchrun --standalone --nproc_per_node=1 -m seq2seq train configs/quickstart.yaml \
    run_dir="$q/run" device=cuda train.epochs=2 --quiet --resume
check python3 -m seq2seq evaluate "$q/run" --split test --beam 5
echo "I am cold." | check python3 -m seq2seq translate "$q/run" --beam 5
exit $status
