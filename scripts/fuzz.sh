#!/usr/bin/env bash
# The fuzz campaign of issue 17, item 7: runs each cargo-fuzz target of fuzz/ for a bounded time and says,
# per target, how many inputs it ran and whether it found anything.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 60 seconds each, every target
#
# Needs the nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz (`cargo install
# cargo-fuzz`). Builds without a sanitizer (`-s none`): every crate of the workspace forbids `unsafe`, so
# AddressSanitizer would only slow the search; with debug assertions (`-a`) so an arithmetic overflow
# panics instead of wrapping. Each target starts from its committed seeds (fuzz/seeds/TARGET, small files
# made with the real CLI) and grows its corpus in fuzz/corpus/TARGET (not committed). A finding is written
# to fuzz/artifacts/TARGET/; replay it with `cargo +nightly fuzz run -s none -a TARGET FILE`, fix it, and
# add the input as a regression test to the stable suite (tests/fuzz_regressions.rs).
# Limits per input: 10 s (a hang is a finding), 2 GB of memory, 64 KiB of input.
set -euo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")/../fuzz"
all=(envelope_decode import_cfgledger import_mcpgateway envfile catalog_file log_jsonl audit_query)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz" >&2
    exit 2
fi
cargo +nightly fuzz build -s none -a

failed=0
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "== $t: $seconds s"
    if cargo +nightly fuzz run -s none -a "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result=FINDING
        failed=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    corpus=$(find "corpus/$t" -type f | wc -l)
    summary+=("$(printf '%-18s %-8s %12s inputs  cov %6s  corpus %5s' "$t" "$result" "${runs:-?}" "${cov:-?}" "$corpus")")
    if [ "$result" = FINDING ]; then
        grep -m1 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" || true
        ls -1 "artifacts/$t" | grep -v last-run.log | sed "s|^|    artifacts/$t/|" || true
    fi
done
echo
printf '%s\n' "${summary[@]}"
exit $failed
