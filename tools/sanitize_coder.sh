#!/usr/bin/env bash
# Build codec._rangecoder with AddressSanitizer + UndefinedBehaviorSanitizer into a
# temporary directory (the normal in-place .so is left alone), then run the fuzzer and
# the range coder tests against that build; then build the pure C++ core with
# ThreadSanitizer and run tools/tsan_substreams.cpp (substreams on 1-8 threads). Exits
# non-zero on any sanitizer report, test failure or fuzz failure.
#
# Usage: tools/sanitize_coder.sh [FUZZ_ITERATIONS]   (default 3000)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ITER="${1:-3000}"
PY="${PYTHON:-python}"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/sanitize_coder.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "== building sanitized extension in $TMP"
cd "$ROOT"
CODEC_SANITIZE=1 "$PY" setup.py -q build_ext --build-lib "$TMP/lib" --build-temp "$TMP/tmp" >"$TMP/build.log" 2>&1 || {
  cat "$TMP/build.log"; echo "sanitized build FAILED"; exit 1; }
SO="$(ls "$TMP"/lib/codec/_rangecoder*.so)"

# A copy of the package (Python sources only) with the sanitized extension, plus tests and tools.
mkdir -p "$TMP/pkg"
(cd "$ROOT" && tar --exclude='*.so' --exclude='__pycache__' -cf - codec tests/test_rangecoder.py tests/test_rangecoder_tables.py tests/test_substreams.py tools/fuzz_coder.py) | tar -xf - -C "$TMP/pkg"
cp "$SO" "$TMP/pkg/codec/"

LIBASAN="$(gcc -print-file-name=libasan.so)"
# libstdc++ is preloaded too: python itself does not link it, and without it ASan's
# __cxa_throw interceptor finds no real __cxa_throw ("CHECK failed ... real___cxa_throw")
# as soon as the extension throws (pybind11 raises ValueError via a C++ exception).
LIBSTDCXX="$(gcc -print-file-name=libstdc++.so)"
export LD_PRELOAD="$LIBASAN $LIBSTDCXX"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:exitcode=99"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=98"
export PYTHONPATH="$TMP/pkg"
export PYTHONDONTWRITEBYTECODE=1
cd "$TMP/pkg"

status=0
"$PY" -c "import codec._rangecoder as m, sys; assert m.__file__.startswith('$TMP'), m.__file__; print('using', m.__file__)" || status=1

echo "== fuzz_coder.py ($ITER iterations)"
"$PY" tools/fuzz_coder.py --iterations "$ITER" --seed 1 2>&1 | tee "$TMP/fuzz.log" || status=1

echo "== tests/test_rangecoder.py tests/test_rangecoder_tables.py tests/test_substreams.py"
"$PY" -m pytest -q -p no:cacheprovider tests/test_rangecoder.py tests/test_rangecoder_tables.py tests/test_substreams.py 2>&1 | tee "$TMP/tests.log" || status=1

echo "== ThreadSanitizer: the pure C++ core's substreams on 1-8 threads (tools/tsan_substreams.cpp)"
env -u LD_PRELOAD "${CXX:-g++}" -std=c++17 -O1 -g -fsanitize=thread -I"$ROOT/csrc" "$ROOT/csrc/rangecoder.cpp" "$ROOT/csrc/tables.cpp" \
  "$ROOT/tools/tsan_substreams.cpp" -o "$TMP/tsan_substreams" -pthread 2>&1 | tee "$TMP/tsan.log" || status=1
env -u LD_PRELOAD TSAN_OPTIONS="halt_on_error=1:exitcode=97" "$TMP/tsan_substreams" 2>&1 | tee -a "$TMP/tsan.log" || status=1

if grep -qE "ERROR: AddressSanitizer|runtime error:|UndefinedBehaviorSanitizer|LeakSanitizer|ThreadSanitizer" "$TMP/fuzz.log" "$TMP/tests.log" "$TMP/tsan.log"; then
  echo "sanitizer report found"
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "sanitize_coder: OK (ASan+UBSan build, fuzz + tests clean; TSan substreams clean)"
else
  echo "sanitize_coder: FAILED"
fi
exit "$status"
