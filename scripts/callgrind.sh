#!/usr/bin/env bash
# Repeatable instruction counts for the bench programs, under valgrind's callgrind: what one
# preparation costs (parsing the blob and building the instruction list the interpreter
# translates; parsing and JIT compilation, which decodes the code itself; PolkaVM's compiler)
# and what one run costs on the interpreters. Wall-clock times on a shared machine move by
# 10-30% from run to run; these counts do not. Prints a markdown table.
#
#   scripts/callgrind.sh [--no-run] [PROGRAM...]
#
# PROGRAM: sieve blake2b sort intmix memops hostcall large (default: all). Each count is the
# difference between two loop lengths divided by the difference in iterations, so that process
# start-up and one-time setup cancel out. --no-run skips the run counts (the slow part: every
# interpreter run is counted twice over). Built with the `polkavm` feature when it builds,
# which adds PolkaVM's columns. The JIT's runs cannot be counted: valgrind does not deliver
# the memory faults compiled code relies on. Programs come from $JAVM_BENCH or ../shared/bench.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs=1
programs=()
for arg in "$@"; do
  case "$arg" in
    --no-run) runs=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $arg (see --help)" >&2; exit 2 ;;
    *) programs+=("$arg") ;;
  esac
done
known=(sieve blake2b sort intmix memops hostcall large)
[ ${#programs[@]} -gt 0 ] || programs=("${known[@]}")
for p in "${programs[@]}"; do
  case " ${known[*]} " in
    *" $p "*) ;;
    *) echo "unknown program $p (one of: ${known[*]})" >&2; exit 2 ;;
  esac
done
command -v valgrind >/dev/null || { echo "scripts/callgrind.sh needs valgrind (apt-get install valgrind)" >&2; exit 2; }

features=(--features polkavm)
if ! cargo build -q --release -p javm-harness --example prepare_loop "${features[@]}" 2>/dev/null; then
  features=()
  cargo build -q --release -p javm-harness --example prepare_loop
fi
cargo build -q --release -p javm-harness "${features[@]}"
target="${CARGO_TARGET_DIR:-$root/target}/release"
polkavm=$([ ${#features[@]} -gt 0 ] && echo 1 || echo 0)
# Each program must load before it is counted: a run that fails at once would be counted as
# (nearly) zero instructions.
for p in "${programs[@]}"; do
  "$target/examples/prepare_loop" "$p" decode 1 >/dev/null || exit 2
done

# Instructions counted for one command, summed over the processes it starts.
count() {
  valgrind --tool=callgrind --trace-children=yes --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
    awk '/Collected :/ { sum += $4 } END { printf "%.0f\n", sum }'
}
# Instructions per iteration: COMMAND... run with LOW and with HIGH as its last argument.
per() {
  local low=$1 high=$2
  shift 2
  local a b
  a=$(count "$@" "$low")
  b=$(count "$@" "$high")
  echo $(((b - a) / (high - low)))
}
# Instructions per timed run of `bench` (it runs each backend once untimed, then --runs times).
per_run() {
  local program=$1 backend=$2 a b
  a=$(count "$target/javm-harness" bench "$program" --backend "$backend" --runs 1)
  b=$(count "$target/javm-harness" bench "$program" --backend "$backend" --runs 3)
  echo $(((b - a) / 2))
}
fmt() { if [ "$1" = - ]; then echo -; else printf "%'d" "$1"; fi; }

header="| program | parse + list | parse + JIT compile |"
rule="|---|---|---|"
if [ "$polkavm" = 1 ]; then header+=" PolkaVM compile |"; rule+="---|"; fi
if [ "$runs" = 1 ]; then
  header+=" interpreter run |"; rule+="---|"
  if [ "$polkavm" = 1 ]; then header+=" PolkaVM interpreter run |"; rule+="---|"; fi
fi
echo "Instructions counted by callgrind: per preparation (from the blob) and per run."
echo
echo "$header"
echo "$rule"
for p in "${programs[@]}"; do
  row="| $p | $(fmt "$(per 10 30 "$target/examples/prepare_loop" "$p" decode)")"
  row+=" | $(fmt "$(per 10 30 "$target/examples/prepare_loop" "$p" jit)")"
  if [ "$polkavm" = 1 ]; then
    row+=" | $(fmt "$(per 10 30 "$target/examples/prepare_loop" "$p" polkavm-compiler)")"
  fi
  if [ "$runs" = 1 ]; then
    if [ "$p" = large ]; then
      row+=" | -"
      [ "$polkavm" = 1 ] && row+=" | -"
    else
      row+=" | $(fmt "$(per_run "$p" interp)")"
      [ "$polkavm" = 1 ] && row+=" | $(fmt "$(per_run "$p" polkavm-interp)")"
    fi
  fi
  echo "$row |"
done
