#!/usr/bin/env bash
# Creates an isolated SoftHSM2 token directory and, optionally, a token in it.
#
#   setup-token.sh --dir DIR                  create DIR/softhsm2.conf and DIR/tokens
#   setup-token.sh --dir DIR --label LABEL    ... and initialise a token named LABEL
#
# With --label, the SO PIN and the user PIN are read from standard input, one
# per line, so they never appear in the environment or in shell history. They do
# appear, for the moment softhsm2-util runs, in its arguments (it has no other
# non-interactive way to take them): acceptable for development and test
# tokens, which is all this script is for. A label
# that already exists in DIR is refused (tokens are found by label, so labels
# must be unique). Prints the absolute path of the config file on success; set
# SOFTHSM2_CONF to it. Concurrent calls on the same DIR are serialised by a lock.
set -euo pipefail

die() { echo "setup-token: $*" >&2; exit 1; }

dir="" label=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="${2:-}"; shift 2 ;;
    --label) label="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ -n "$dir" ] || die "--dir is required"
command -v softhsm2-util >/dev/null || die "softhsm2-util not found: install the softhsm2 package"
if [ -n "$label" ] && [ "${#label}" -gt 32 ]; then
  die "token label '$label' is longer than 32 characters"
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$dir/tokens"
chmod 700 "$dir" "$dir/tokens"
dir="$(cd "$dir" && pwd)"
conf="$dir/softhsm2.conf"

exec 9>"$dir/.lock"
flock 9

if [ ! -f "$conf" ]; then
  sed "s|@TOKENDIR@|$dir/tokens|" "$here/softhsm2.conf.in" > "$conf.tmp"
  mv "$conf.tmp" "$conf"
fi

if [ -n "$label" ]; then
  IFS= read -r so_pin || die "expected the SO PIN on standard input"
  IFS= read -r user_pin || die "expected the user PIN on standard input"
  [ -n "$so_pin" ] && [ -n "$user_pin" ] || die "PINs must not be empty"
  existing="$(SOFTHSM2_CONF="$conf" softhsm2-util --show-slots 2>/dev/null \
    | sed -n 's/^ *Label: *//p' | sed 's/ *$//')"
  if printf '%s\n' "$existing" | grep -qxF -- "$label"; then
    die "a token labelled '$label' already exists in $dir"
  fi
  SOFTHSM2_CONF="$conf" softhsm2-util --init-token --free --label "$label" \
    --so-pin "$so_pin" --pin "$user_pin" >/dev/null \
    || die "softhsm2-util could not initialise token '$label'"
fi

echo "$conf"
