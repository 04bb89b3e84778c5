#!/usr/bin/env bash
# Data-parallel training: two processes (gloo on CPUs, NCCL with one GPU each), rank 0 writes the model.
#     bash examples/torchrun.sh              # 2 processes, the default budget
#     bash examples/torchrun.sh 20           # 20 iterations (CI runs this)
set -euo pipefail
work=$(mktemp -d)
python -c "
from pathlib import Path; import nibabel as nib
from napari_contrastseg.samples import load_sample
s = load_sample('colin27-deep'); d = Path('$work/images'); d.mkdir()
nib.save(nib.Nifti1Image(s.image, s.affine), d / 'a.nii.gz')
nib.save(nib.Nifti1Image(s.painted, s.affine), d / 'a_labels.nii.gz')"
budget=()
[ -n "${1:-}" ] && budget=(--iterations "$1")
OMP_NUM_THREADS=1 torchrun --standalone --nproc-per-node 2 -m napari_contrastseg train --images "$work/images" \
    -o "$work/model.safetensors" "${budget[@]}"
contrastseg info "$work/model.safetensors" | grep -m1 '"iterations"'
