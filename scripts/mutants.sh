#!/usr/bin/env bash
# Plants each bug of scripts/mutants.txt alone in a scratch copy of the tree and records
# whether `javm-harness diff` with the reference model in the pair catches it within a fixed
# budget (every profile, every gas model, structured and raw). Writes reports/mutants.md and
# prints one line per bug; exits 1 when a bug survives.
#
#   scripts/mutants.sh [--count N] [--seed S] [--only ID[,ID...]]
#
# N programs per configuration (default 20000); configurations stop at the first catch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
count=20000
seed=7
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --count) count="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v python3 >/dev/null || { echo "scripts/mutants.sh needs python3" >&2; exit 2; }

scratch="${MUTANTS_DIR:-${TMPDIR:-/tmp}/javm-mutants}"
mkdir -p "$scratch"
rm -rf "$scratch/tree" && mkdir -p "$scratch/tree"
(cd "$root" && tar --exclude=./target --exclude=./fuzz/target --exclude=./.git --exclude=./reports -cf - .) | tar -xmf - -C "$scratch/tree"
export CARGO_TARGET_DIR="$scratch/target"
build() { (cd "$scratch/tree" && cargo build -q --profile mutants -p javm-harness 2>"$scratch/build.log"); }
harness="$CARGO_TARGET_DIR/mutants/javm-harness"
echo "building the unmutated tree..." >&2
build || { cat "$scratch/build.log" >&2; exit 2; }

configs=()
for p in a b j; do
  for g in auto block-table instruction; do configs+=("--profile $p --gas-model $g"); done
  configs+=("--profile $p --raw")
done
# The unmutated tree must agree everywhere, or a catch would mean nothing.
for c in "${configs[@]}"; do
  # shellcheck disable=SC2086
  if ! "$harness" diff --pair interp:model $c --count "$count" --seed "$seed" --explain 0 --reports "$scratch/r" >/dev/null 2>&1; then
    echo "the unmutated tree diverges from the model with: $c" >&2
    exit 2
  fi
done

report="$root/reports/mutants.md"
mkdir -p "$root/reports"
{
  echo "# Planted bugs in shared code, and what catches them"
  echo
  echo "\`scripts/mutants.sh --count $count --seed $seed\`: \`diff --pair interp:model\`, $count programs per configuration (profiles a/b/j × gas auto/block-table/instruction, plus raw), stopping at the first catch; \`vectors\` = the public suites on the interpreter."
  echo
  echo "| id | planted bug | diff interp:model | first catching configuration | diff interp:jit | public vectors |"
  echo "|---|---|---|---|---|---|"
} >"$report"

caught=0; survived=0; total=0
python3 - "$root/scripts/mutants.txt" "$scratch/mutants.tsv" <<'PY'
import sys, json
blocks, cur = [], None
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    if line.startswith("#"):
        continue
    if line.startswith("id "):
        cur = {"id": line[3:], "old": [], "new": []}; blocks.append(cur)
    elif line.startswith("file "): cur["file"] = line[5:]
    elif line.startswith("what "): cur["what"] = line[5:]
    elif line.startswith("- "): cur["old"].append(line[2:])
    elif line.startswith("+ "): cur["new"].append(line[2:])
with open(sys.argv[2], "w") as out:
    for b in blocks:
        out.write(json.dumps(b) + "\n")
PY
while IFS= read -r mutant; do
  id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$mutant")
  if [ -n "$only" ] && ! echo ",$only," | grep -q ",$id,"; then continue; fi
  what=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["what"])' "$mutant")
  file=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["file"])' "$mutant")
  cp "$root/$file" "$scratch/tree/$file"
  if ! python3 - "$mutant" "$scratch/tree/$file" <<'PY'
import json, sys
m = json.loads(sys.argv[1]); path = sys.argv[2]
text = open(path).read()
old, new = "\n".join(m["old"]), "\n".join(m["new"])
if text.count(old) != 1:
    sys.exit(f"{m['id']}: the text to replace occurs {text.count(old)} times in {m['file']}")
open(path, "w").write(text.replace(old, new))
PY
  then survived=$((survived + 1)); total=$((total + 1)); continue; fi
  total=$((total + 1))
  if ! build; then
    echo "$id: does not compile (not counted)"; cp "$root/$file" "$scratch/tree/$file"; total=$((total - 1)); continue
  fi
  verdict="survived"; where="-"
  for c in "${configs[@]}"; do
    # shellcheck disable=SC2086
    if ! timeout 60 "$harness" diff --pair interp:model $c --count "$count" --seed "$seed" --explain 0 --reports "$scratch/r" >/dev/null 2>&1; then
      verdict="caught"; where="$c"; break
    fi
  done
  jit="agrees"
  for c in "${configs[@]}"; do
    # shellcheck disable=SC2086
    if ! timeout 60 "$harness" diff --pair interp:jit $c --count "$count" --seed "$seed" --explain 0 --reports "$scratch/r" >/dev/null 2>&1; then
      jit="caught"; break
    fi
  done
  vectors="pass"
  if ! "$harness" vectors --backend interp "${JAVM_VECTORS:-$root/../shared/vectors}" >/dev/null 2>&1; then vectors="fail"; fi
  if [ "$verdict" = caught ]; then caught=$((caught + 1)); else survived=$((survived + 1)); fi
  echo "$id: $verdict${where:+ ($where)}; interp:jit $jit; vectors $vectors — $what"
  echo "| $id | $what | $verdict | \`$where\` | $jit | $vectors |" >>"$report"
  cp "$root/$file" "$scratch/tree/$file"
done <"$scratch/mutants.tsv"
{
  echo
  echo "Score: $caught of $total planted bugs caught by \`diff --pair interp:model\`."
} >>"$report"
echo "score: $caught/$total caught; report in reports/mutants.md"
[ "$survived" -eq 0 ]
