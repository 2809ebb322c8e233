#!/usr/bin/env bash
# Fuzz targets for SECONDS each (default 60): every target in fuzz_targets/
# (frame_decode, session, e2e), or only those named after SECONDS.
# Seeds are read from corpus/<target>; new inputs go to corpus-work/<target>
# (git-ignored) so the committed seed corpus stays small. Crashes land in
# artifacts/<target>/ and make this script exit non-zero; an input running
# longer than FUZZ_TIMEOUT seconds (default 30) counts as a crash (a hang).
set -euo pipefail
seconds="${1:-60}"
shift || true
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for file in fuzz_targets/*.rs; do
        targets+=("$(basename "$file" .rs)")
    done
fi

status=0
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "corpus-work/$target"
    echo "== fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" "corpus-work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-30}" -print_final_stats=1 || status=$?
done
exit "$status"
