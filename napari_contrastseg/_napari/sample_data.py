"""Sample data: the bundled real samples, each opened as an image and a ``scribbles`` labels layer."""

from __future__ import annotations

from .reader import geometry_metadata


def _sample_layers(name: str) -> list[tuple]:
    from ..samples import load_sample

    s = load_sample(name)
    geometry = geometry_metadata(s.affine, s.spacing, source=str(s.paths["image"]))
    image_meta = {
        "name": name,
        "scale": s.spacing,
        "colormap": "gray",
        "metadata": {**geometry, "sample": name, "painted_axis": s.painted_axis},
    }
    labels_meta = {
        "name": "scribbles",
        "scale": s.spacing,
        "opacity": 0.8,
        "metadata": {**geometry, "class_names": list(s.class_names), "image": name, "sample": name},
    }
    return [(s.image, image_meta, "image"), (s.painted, labels_meta, "labels")]


def colin27_deep() -> list[tuple]:
    """Colin27 T1 crop around the deep grey nuclei (12 structures), three axial slices painted."""
    return _sample_layers("colin27-deep")


def icbm_tissue() -> list[tuple]:
    """ICBM152 T1 crop with CSF / grey / white matter, three axial slices painted."""
    return _sample_layers("icbm-tissue")
