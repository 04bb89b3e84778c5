#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: a virtual display with Mesa OpenGL and Qt's xcb libraries
# (napari under xvfb-run), the CPU build of PyTorch, and the package with its testing extra.
set -euo pipefail
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    xvfb xauth libgl1-mesa-dri libgl1 libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3 \
    libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
    libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 >/dev/null
fi
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[testing]"
