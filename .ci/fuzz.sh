#!/usr/bin/env bash
# Builds every cargo-fuzz target under fuzz/ and runs each for a bounded
# time, failing on the first crash (its input lands in fuzz/artifacts/).
#
#   .ci/fuzz.sh [target...]      # default: every target (`cargo fuzz list`)
#   FUZZ_SECONDS=60 .ci/fuzz.sh  # per-target time (default 20 s)
#
# cargo-fuzz passes nightly-only flags to rustc; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain accept them. New corpus entries go to fuzz/corpus/
# (git-ignored); the checked-in seeds in fuzz/seeds/ are only read.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

seconds="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

# Build everything first, so a compile error fails fast.
cargo fuzz build

for t in "${targets[@]}"; do
    dirs=("corpus/$t")
    mkdir -p "corpus/$t"
    if [ -d "seeds/$t" ]; then
        dirs+=("seeds/$t")
    fi
    echo "=== fuzz $t for ${seconds}s"
    cargo fuzz run "$t" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 -print_final_stats=1
done
echo "=== all ${#targets[@]} fuzz targets ran ${seconds}s each without a crash"
