#!/usr/bin/env bash
# Runs every test: installs what is missing, then `bazel test //...` (all tests, including the
# no-sandbox ones that need real root) and the same under ASan+UBSan (--config=asan; targets tagged
# no-asan -- fully static links, a replaced allocator -- are left out there). Ends with
# "N passed, N failed".
#   tools/test.sh
set -uo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

filters=()
if [ "$(id -u)" -ne 0 ]; then
  echo "test: not root: the no-sandbox tests (chroot, setgroups, mounts) are left out" >&2
  filters=(--test_tag_filters=-no-sandbox)
fi

passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() {  # run LABEL bazel-args...
  local label=$1
  shift
  bazel test --test_summary=short "$@" //... 2>&1 | tee "$log" | grep -E '^(//|ERROR|FAIL|Executed)' >&2
  local p f
  p=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
  f=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FLAKY|INCOMPLETE|FAILED TO BUILD)' "$log")
  # A build error fails the run without listing targets: count it as one failure.
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  echo "test: $label: $p passed, $f failed" >&2
  passed=$((passed + p))
  failed=$((failed + f))
}

# The build graph proves the layering rules (STYLE.md): the child side of the fork cannot reach an
# allocating library, and dockerfile/ and userdb/ depend on nothing of ours but base/.
graph_check() {  # graph_check LABEL QUERY FORBIDDEN-REGEX
  local found
  found=$(bazel query "$2" 2>/dev/null | grep -E "$3" || true)
  if [ -z "$found" ] && bazel query "$2" >/dev/null 2>&1; then
    echo "test: build graph: $1: ok" >&2
    passed=$((passed + 1))
  else
    echo "test: build graph: $1: FAILED ${found}" >&2
    failed=$((failed + 1))
  fi
}
graph_check "//executor:child reaches no allocating library" 'deps(//executor:child)' \
  '^//base|^@system|^//(image|snapshot|userdb|dockerfile)'
graph_check "//dockerfile depends only on //base" 'deps(//dockerfile:plan) + deps(//dockerfile:dockerignore)' \
  '^//(executor|image|snapshot|userdb)'
graph_check "//userdb depends only on //base" 'deps(//userdb:resolve)' '^//(executor|image|snapshot|dockerfile)'

run default "${filters[@]}"
if [ ${#filters[@]} -eq 0 ]; then
  run asan --config=asan --build_tag_filters=-no-asan --test_tag_filters=-no-asan
else
  run asan --config=asan --build_tag_filters=-no-asan --test_tag_filters=-no-asan,-no-sandbox
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
