#!/usr/bin/env bash
# Installs the prebuilt ecskit binary: the install logic of the repository's GitHub Action
# (action.yml), kept in a script so that it runs, and is tested, outside GitHub too.
#
#   ECSKIT_VERSION   a release tag (v0.2.0) or "latest"
#   ECSKIT_BINARIES  which steps to put on PATH as links to `ecskit` (space or comma separated;
#                    default: all eight)
#   ECSKIT_BASE_URL  where the release files are (default: this repository's GitHub releases;
#                    tests point it at a local directory with file://)
#   ECSKIT_INSTALL_DIR  where the binary goes (default: $RUNNER_TOOL_CACHE or ~/.ecskit/bin)
#
# A release holds one binary, `ecskit`, with every step in it (busybox-style): cargo-dist makes
# one archive per target (`ecskit-cli-x86_64-unknown-linux-musl.tar.xz`) with its `.sha256`.
# This downloads the archive for this OS and CPU, checks it against its SHA-256 checksum before
# unpacking anything, installs `ecskit` and a link named after each step asked for
# (`role-create` -> `ecskit`), and puts the directory on PATH ($GITHUB_PATH when present). A
# second run for the same version downloads nothing. No credentials are involved: AWS
# credentials stay with aws-actions/configure-aws-credentials.
set -euo pipefail
# The lists below are split into words, never expanded as file patterns (`*` is no step).
set -f

# The steps, as the contract lists them (xtask/tests/action.rs checks this list against it).
steps="image-push role-create instance-profile capacity-create config-upload taskdef-register service-run task-run"
repo="${ECSKIT_REPOSITORY:-ecskit/ecskit}"
version="${ECSKIT_VERSION:-latest}"
binaries="${ECSKIT_BINARIES:-$steps}"
binaries="${binaries//,/ }"

fail() { echo "ecskit install: $*" >&2; exit 1; }

# A name becomes a file name in the install directory: only the steps' own names are taken
# (not `../x`, not `ecskit`), checked before anything is downloaded (exit 2, as bad input).
for b in $binaries; do
  case " $steps " in
    *" $b "*) ;;
    *) echo "ecskit install: '$b' is not a step: one of ${steps// /, }; nothing was installed" >&2; exit 2 ;;
  esac
done

case "$(uname -s)" in
  Linux) os=unknown-linux-musl ;;
  Darwin) os=apple-darwin ;;
  *) fail "no prebuilt binaries for $(uname -s): build from source with cargo install (see README)" ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) fail "no prebuilt binaries for the CPU $(uname -m): build from source with cargo install (see README)" ;;
esac
target="$arch-$os"

if [ -z "${ECSKIT_BASE_URL:-}" ]; then
  if [ "$version" = latest ]; then
    base="https://github.com/$repo/releases/latest/download"
  else
    base="https://github.com/$repo/releases/download/$version"
  fi
else
  base="${ECSKIT_BASE_URL%/}"
fi

root="${ECSKIT_INSTALL_DIR:-${RUNNER_TOOL_CACHE:-$HOME/.ecskit}/ecskit}"
dir="$root/$version/$target"
if [ -f "$dir/.installed" ]; then
  echo "ecskit $version ($target) is already installed in $dir"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  fetch() { curl --proto '=https,file' --tlsv1.2 -fsSL --retry 3 -o "$2" "$1" || fail "could not download $1"; }
  archive="ecskit-cli-$target.tar.xz"
  fetch "$base/$archive" "$work/$archive"
  fetch "$base/$archive.sha256" "$work/$archive.sha256"
  want="$(awk '{print $1; exit}' "$work/$archive.sha256")"
  got="$( (sha256sum "$work/$archive" 2>/dev/null || shasum -a 256 "$work/$archive") | awk '{print $1}')"
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    fail "checksum mismatch for $archive: expected ${want:-nothing}, got $got. The download is corrupt or was tampered with; nothing was installed."
  fi
  mkdir -p "$work/x"
  tar -xJf "$work/$archive" -C "$work/x"
  found="$(find "$work/x" -type f -name ecskit | head -n 1)"
  [ -n "$found" ] || fail "the archive $archive holds no binary 'ecskit'; nothing was installed"
  mkdir -p "$dir"
  install -m 0755 "$found" "$dir/ecskit"
  touch "$dir/.installed"
  echo "installed ecskit $version ($target)"
fi

# The links: `role-create` runs `ecskit role-create`. Made on every run (a later use may ask
# for other steps); a link already there is left as it is.
for b in $binaries; do
  [ -L "$dir/$b" ] || ln -s ecskit "$dir/$b"
done
echo "steps on PATH: $binaries"

if [ -n "${GITHUB_PATH:-}" ]; then
  grep -qxF "$dir" "$GITHUB_PATH" 2>/dev/null || echo "$dir" >> "$GITHUB_PATH"
fi
echo "bin-dir=$dir" >> "${GITHUB_OUTPUT:-/dev/null}"
echo "$dir"
