"""``python -m napari_contrastseg``: the same as the ``contrastseg`` command."""

import sys

from .cli import main

sys.exit(main())
