# Sourced by the scripts in this directory: puts a rustup-installed cargo on PATH
# and moves to the repository root.
# shellcheck shell=bash
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
