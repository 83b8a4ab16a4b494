#!/usr/bin/env bash
# Fuzzes the JSV reader: ./run.sh [SECONDS] (default 60).
#
# cargo fuzz needs nightly compiler flags (-Z sanitizer); the project's
# toolchain is stable, so RUSTC_BOOTSTRAP=1 unlocks them. Crashes land in
# artifacts/parse/; re-run one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run parse artifacts/parse/<file>
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The committed seeds stay untouched; the fuzzer grows a scratch copy.
mkdir -p corpus/parse
for seed in seeds/parse/*; do
    [ -e "corpus/parse/${seed##*/}" ] || cp "$seed" corpus/parse/
done

RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_total_time="$seconds"
