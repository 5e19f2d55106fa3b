#!/usr/bin/env bash
# Installs the libtorch that `tch` 0.26 is built against (PyTorch 2.13.0, from the PyPI wheel) into a
# cache outside the repository, once, and points this checkout's build at it through the git-ignored
# link `.libtorch` (read by `.cargo/config.toml`). A second call, or a second clone on the same
# machine, reuses the cache and returns in about a second.
#
#   BACKPROP_CACHE   cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/backprop)
#
# A user's own LIBTORCH or LIBTORCH_USE_PYTORCH=1 still wins over the link: `.cargo/config.toml`
# does not force it.
set -euo pipefail

TORCH_VERSION=2.13.0
NEED_GB=6
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BACKPROP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/backprop}
venv=$cache/torch-$TORCH_VERSION
stamp=$venv/.complete

die() { echo "setup-libtorch: $*" >&2; exit 1; }

link() {
    local torch_dir
    torch_dir=$(cat "$stamp")
    [ -f "$torch_dir/lib/libtorch_cpu.so" ] || die "cache at $venv is damaged (no libtorch_cpu.so); remove it and run again"
    ln -sfn "$torch_dir" "$repo/.libtorch"
    echo "setup-libtorch: libtorch $TORCH_VERSION at $torch_dir (linked as .libtorch)"
    echo "setup-libtorch: Python with torch, numpy and safetensors: $venv/bin/python (or scripts/python, which also puts python/ on its path)"
}

if [ -f "$stamp" ]; then
    link
    exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found; install Python 3 (3.10 to 3.13) with pip and run again"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 \
    || die "python3 has neither venv/ensurepip nor pip; install pip (e.g. apt-get install python3-pip python3-venv)"

mkdir -p "$cache" || die "cannot create cache directory $cache"
free_kb=$(df -Pk "$cache" | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt $((NEED_GB * 1024 * 1024)) ]; then
    die "not enough disk space at $cache: $((free_kb / 1024 / 1024)) GB free, about $NEED_GB GB needed (set BACKPROP_CACHE to elsewhere)"
fi

rm -rf "$venv"
echo "setup-libtorch: installing torch==$TORCH_VERSION from PyPI into $venv (about 5 GB, a few minutes)"
python3 -m venv "$venv" >/dev/null 2>&1 || die "python3 -m venv failed; install the venv module (e.g. apt-get install python3-venv)"
log=$cache/pip-install.log
if ! "$venv/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off \
    "torch==$TORCH_VERSION" numpy safetensors >"$log" 2>&1; then
    tail -n 5 "$log" >&2
    rm -rf "$venv"
    die "pip install torch==$TORCH_VERSION failed (full log: $log); check the network and disk space, then run again"
fi

torch_dir=$("$venv/bin/python" - "$TORCH_VERSION" <<'PY'
import os, sys
import torch
want = sys.argv[1]
have = torch.__version__.split("+")[0]
if have != want:
    sys.exit(f"installed torch is {torch.__version__}, expected {want}")
print(os.path.dirname(torch.__file__))
PY

) || { rm -rf "$venv"; die "the installed torch does not import or has the wrong version"; }

echo "$torch_dir" >"$stamp"
link
