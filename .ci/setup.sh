#!/usr/bin/env bash
# Sets up everything the runtime and its tests need on a fresh Debian machine: system packages (Chromium,
# Xvfb, xdotool, adb, fonts), a virtual environment in .venv, CPU torch, and the project with its test extra.
# Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

APT_PACKAGES="chromium xvfb xdotool adb xclip x11-utils fonts-noto-cjk python3-venv python3-tk"
missing=""
for p in $APT_PACKAGES; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "[setup] installing system packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# torch first and pinned: a bare dependency on torch would let pip pick a multi-GB CUDA build on CPU machines.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
pip_quiet() {  # pip's output only when it fails (a local mirror here prints a warning per package)
  local log; log=$(mktemp)
  if ! .venv/bin/pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" >&2; echo "[setup] pip install $* failed" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
}
.venv/bin/python -c "import torch" 2>/dev/null || pip_quiet "$TORCH_SPEC"
pip_quiet -e '.[test]'
.venv/bin/python -c "import torch, transformers, playwright, adb_shell; print('[setup] ready: torch', torch.__version__, 'transformers', transformers.__version__)"
