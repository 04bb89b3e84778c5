#!/usr/bin/env bash
# The command line on a folder: train one model from NAME + NAME_labels pairs (unpainted images allowed), predict
# every image of a folder, ask where to paint next.
#     bash examples/cli_folder.sh            # default budget
#     bash examples/cli_folder.sh 10         # a 10-second budget (CI runs this)
set -euo pipefail
budget=${1:-60}
work=$(mktemp -d)
python - "$work" <<'PY'
import sys
from pathlib import Path
import nibabel as nib
from napari_contrastseg.samples import load_sample
folder = Path(sys.argv[1]) / "images"
folder.mkdir()
for name in ("colin27-deep", "icbm-tissue"):
    s = load_sample(name)
    nib.save(nib.Nifti1Image(s.image, s.affine), folder / f"{name}.nii.gz")
    if name == "colin27-deep":  # painted; the other one is unpainted (it still feeds the semi-supervised terms)
        nib.save(nib.Nifti1Image(s.painted, s.affine), folder / f"{name}_labels.nii.gz")
PY
contrastseg train --images "$work/images" -o "$work/model.safetensors" --time-budget "$budget"
contrastseg predict "$work/model.safetensors" "$work/images" -o "$work/predictions" --uncertainty
contrastseg suggest "$work/model.safetensors" "$work/images/colin27-deep.nii.gz" \
    "$work/images/colin27-deep_labels.nii.gz" -k 3
contrastseg info "$work/model.safetensors" | head -5
ls "$work/predictions"
