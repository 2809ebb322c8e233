#!/usr/bin/env bash
# Soak test: random stream churn over TCP on 127.0.0.1 for MINUTES (default
# 10), sampling RSS and live streams every 10 s. Exits non-zero on data
# corruption, unexpected errors, leaked streams or RSS growth after warm-up.
# Extra arguments go to the example (e.g. --concurrency 128 --seed 7).
set -euo pipefail
minutes="${1:-10}"
shift || true
cd "$(dirname "$0")/.."
exec cargo run --release --quiet --example soak -p mux-yamux-lite -- --minutes "$minutes" "$@"
