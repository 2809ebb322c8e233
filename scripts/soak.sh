#!/usr/bin/env bash
# Soak test: random stream churn over TCP on 127.0.0.1 for MINUTES (default
# 10), sampling RSS and live streams every 10 s. Exits non-zero on data
# corruption, unexpected errors, leaked streams or RSS growth after warm-up
# (judged on runs of 16 sample intervals or more; shorter runs report it as
# not judged). Extra arguments go to the example (e.g. --concurrency 128
# --seed 7); `scripts/soak.sh --help` lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    -h | --help)
        echo "usage: scripts/soak.sh [MINUTES [OPTIONS...]]   (default: 10 minutes; the options are the example's:)"
        exec cargo run --release --quiet --example soak -p mux-yamux-lite -- --help
        ;;
esac
minutes="${1:-10}"
shift || true
exec cargo run --release --quiet --example soak -p mux-yamux-lite -- --minutes "$minutes" "$@"
