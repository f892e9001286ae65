#!/bin/bash -eu
# Builds every cargo-fuzz target the way OSS-Fuzz and ClusterFuzzLite expect: each target's
# binary in $OUT, its seed corpus as $OUT/<target>_seed_corpus.zip and the opcode dictionary
# as $OUT/<target>.dict. They run it from the project folder with $OUT, $SRC and $SANITIZER
# set; locally:
#
#   OUT=/tmp/fuzz-out .clusterfuzzlite/build.sh                 # no sanitizer
#   OUT=/tmp/fuzz-out SANITIZER=address .clusterfuzzlite/build.sh
root=${JAVM_ROOT:-$PWD}
if [ ! -f "$root/fuzz/Cargo.toml" ]; then
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fi
: "${OUT:?set OUT to the folder for the fuzz binaries}"
mkdir -p "$OUT"
cd "$root"

case "${SANITIZER:-none}" in
  none | coverage | introspector) sanitizer=none ;;
  address | memory | undefined | thread) sanitizer=$SANITIZER ;;
  *) echo "unsupported SANITIZER=$SANITIZER" >&2; exit 1 ;;
esac
if [ "$sanitizer" != none ]; then
  # Sanitizers need unstable compiler flags; OSS-Fuzz's toolchain is nightly already.
  export RUSTC_BOOTSTRAP=1
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# Seed corpora (from the public vectors when present, and fixed generator seeds) and the
# dictionary.
cargo run -q --release -p javm-harness -- fuzz-corpus --dir fuzz

cd fuzz
cargo fuzz build -O -s "$sanitizer"
triple=$(rustc -vV | sed -n 's/^host: //p')
for target in $(cargo fuzz list); do
  cp "target/$triple/release/$target" "$OUT/$target"
  cp opcodes.dict "$OUT/$target.dict"
  rm -f "$OUT/${target}_seed_corpus.zip"
  if [ -d "corpus/$target" ] && [ -n "$(ls -A "corpus/$target")" ]; then
    (cd "corpus/$target" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
  fi
  echo "$target: $OUT/$target, ${target}_seed_corpus.zip, $target.dict"
done
