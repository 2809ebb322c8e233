#!/usr/bin/env bash
# Fuzz every target in fuzz_targets/ for SECONDS each (default 60).
# Seeds are read from corpus/<target>; new inputs go to corpus-work/<target>
# (git-ignored) so the committed seed corpus stays small. Crashes land in
# artifacts/<target>/ and make this script exit non-zero.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "run.sh: cargo-fuzz needs a nightly toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi

status=0
for file in fuzz_targets/*.rs; do
    target="$(basename "$file" .rs)"
    mkdir -p "corpus/$target" "corpus-work/$target"
    echo "== fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" "corpus-work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 || status=$?
done
exit "$status"
