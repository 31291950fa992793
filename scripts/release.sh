#!/usr/bin/env bash
# Builds what a release ships, into target/dist/:
#   fortfolio-<version>-x86_64-linux-gnu.tar.gz  binary, example config, unit,
#       README, licences, completions, man pages
#   fortfolio_<version>-1_amd64.deb              built by cargo-deb
#   SHA256SUMS
#
# FORTFOLIO_BIN=path skips `cargo build --release` and packages that binary
# instead (CI packages the one `cargo test` built, to check the package
# without a second, ten-minute build); the archive is then not made.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
target_dir=${CARGO_TARGET_DIR:-$root/target}
# The Debian changelog's newest entry names the version being packaged.
head -1 packaging/debian/changelog | grep -q "^fortfolio ($version-[0-9]*)" \
  || { echo "packaging/debian/changelog: add an entry for $version" >&2; exit 1; }
out=$target_dir/dist
step() { echo "== $*" >&2; }

# cargo-deb, pinned: the package layout below is checked against this version.
cargo_deb_version=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$cargo_deb_version"; then
  step "installing cargo-deb $cargo_deb_version"
  cargo install cargo-deb --version "$cargo_deb_version" --locked --quiet
fi

if [ -n "${FORTFOLIO_BIN:-}" ]; then
  # cargo-deb takes built products from <target>/release/: give it a
  # scratch target dir holding the chosen binary.
  target_dir=$(mktemp -d "${TMPDIR:-/tmp}/fortfolio-pkg.XXXXXX")
  trap 'rm -rf "$target_dir"' EXIT
  mkdir -p "$target_dir/release"
  # Stripped as the release profile strips (a debug build carries ~400 MB of symbols).
  strip -o "$target_dir/release/fortfolio" "$FORTFOLIO_BIN"
else
  step "cargo build --release"
  cargo build --release --locked
fi
bin=$target_dir/release/fortfolio
gen=$target_dir/release/dist
rm -rf "$gen" && mkdir -p "$gen/completions" "$gen/man"

step "generating the packaged config, completions and man pages"
# The example config with the packaged install's paths; both edits must hit.
sed -e 's|^data_dir = "./data"$|data_dir = "/var/lib/fortfolio"|' \
    -e 's|^dir = "./logs"$|dir = "/var/log/fortfolio"|' config.toml.example >"$gen/config.toml"
grep -q '^data_dir = "/var/lib/fortfolio"$' "$gen/config.toml"
grep -q '^dir = "/var/log/fortfolio"$' "$gen/config.toml"
"$bin" config check --config "$gen/config.toml" >/dev/null 2>&1
"$bin" completions bash >"$gen/completions/fortfolio.bash"
"$bin" completions zsh >"$gen/completions/_fortfolio"
"$bin" completions fish >"$gen/completions/fortfolio.fish"
"$bin" manpages "$gen/man" >/dev/null
gzip -9n "$gen"/man/*.1

mkdir -p "$out"
step "cargo deb"
deb=$(CARGO_TARGET_DIR=$target_dir cargo deb --no-build --output "$out" | tail -1)
[ -f "$deb" ] || { echo "cargo deb made no package" >&2; exit 1; }

names=("$(basename "$deb")")
if [ -z "${FORTFOLIO_BIN:-}" ]; then
  step "release archive"
  name=fortfolio-$version-x86_64-linux-gnu
  stage=$(mktemp -d "${TMPDIR:-/tmp}/fortfolio-archive.XXXXXX")
  dir=$stage/$name
  mkdir -p "$dir/completions" "$dir/man" "$dir/systemd" "$dir/licenses"
  cp "$bin" "$dir/"
  cp config.toml.example README.md "$dir/"
  cp packaging/fortfolio.service "$dir/systemd/"
  cp packaging/scaled/fortfolio@.service packaging/backup/fortfolio-backup.* "$dir/systemd/"
  cp "$gen"/completions/* "$dir/completions/"
  cp "$gen"/man/*.1.gz "$dir/man/"
  cp LICENSE-MIT LICENSE-APACHE packaging/debian/copyright "$dir/licenses/"
  cp assets/sentiment/VADER_LICENSE.txt "$dir/licenses/"
  for kind in prices news sentiment; do
    cp "assets/$kind/PROVENANCE.md" "$dir/licenses/PROVENANCE-$kind.md"
  done
  # Reproducible: sorted names, fixed owner and the commit's time.
  mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
      -C "$stage" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
  rm -rf "$stage"
  names+=("$name.tar.gz")
fi

(cd "$out" && sha256sum "${names[@]}" >SHA256SUMS)
step "done"
for n in "${names[@]}" SHA256SUMS; do echo "$out/$n"; done
