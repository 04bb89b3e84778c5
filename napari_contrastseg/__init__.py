"""napari-contrastseg: interactive few-label segmentation with semi-supervised contrastive learning."""

__version__ = "0.1.0"
