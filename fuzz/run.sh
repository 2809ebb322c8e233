#!/usr/bin/env bash
# Fuzz targets for SECONDS each (default 60): every target in fuzz_targets/
# (frame_decode, session, e2e), or only those named after SECONDS. Needs a
# nightly toolchain (`rustup toolchain install nightly`); installs cargo-fuzz
# when it is missing.
# Seeds are read from corpus/<target>; new inputs go to corpus-work/<target>
# (git-ignored) so the committed seed corpus stays small. Crashes land in
# artifacts/<target>/ and make this script exit non-zero; an input running
# longer than FUZZ_TIMEOUT seconds (default 30) counts as a crash (a hang).
set -euo pipefail
case "${1:-}" in
    -h | --help)
        echo "usage: fuzz/run.sh [SECONDS [TARGET...]]   (default: 60 s for each target in fuzz/fuzz_targets)"
        exit 0
        ;;
esac
seconds="${1:-60}"
shift || true
cd "$(dirname "$0")"

# Nightly first: cargo-fuzz takes a minute to install and is of no use without it.
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "run.sh: fuzzing needs a nightly Rust toolchain (libFuzzer's sanitizer flags are nightly-only)." >&2
    echo "run.sh: install it with: rustup toolchain install nightly" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz (once; about a minute)" >&2
    cargo install cargo-fuzz --locked
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
