#!/usr/bin/env bash
# Runs the sshtap vs x/crypto/ssh (and OpenSSH) comparison benchmarks and the
# cipher package's seal/open benchmarks in one go, then prints median tables
# with sshtap/other ratios (internal/benchcmp).
#
# Usage: internal/benchcmp/run.sh [extra go test flags, e.g. -benchtime 2s]
#        internal/benchcmp/run.sh transfer [extra go test flags]
# The transfer mode runs instead BenchmarkTransfer (sshtap, x/crypto/ssh and
# OpenSSH clients uploading and downloading N bytes per cipher to one local
# sshd), BenchmarkTransferSshtapPair and BenchmarkExecLatency in one
# invocation (as root, with sshd and ssh installed; they skip otherwise).
# N is 64 MiB, or 1 GiB with SSHTAP_BENCH_GIB=1 (set it in the environment).
# COUNT (default 3; 1 in transfer mode) is passed to -count. The raw output is kept in $OUT
# (default: a temporary file, printed at the end).
#
# The machine is shared and noisy: compare within one run only, and look at
# the ±% column (max-min over median of the -count runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=default
if [ "${1:-}" = transfer ]; then
	mode=transfer
	shift
fi
if [ "$mode" = transfer ]; then
	count=${COUNT:-1}
else
	count=${COUNT:-3}
fi
out=${OUT:-$(mktemp -t sshtap-bench.XXXXXX)}

if [ "$mode" = transfer ]; then
	go test -run '^$' -bench '^(BenchmarkTransfer|BenchmarkTransferSshtapPair|BenchmarkExecLatency)$' \
		-benchmem -count "$count" -timeout 120m "$@" . | tee "$out"
	go run ./internal/benchcmp < "$out"
	echo
	echo "raw output: $out"
	exit 0
fi

go test -run '^$' -bench 'Handshake|Throughput' -benchmem -count "$count" -timeout 60m "$@" . | tee "$out"
go test -run '^$' \
	-bench 'SealOpen/(chacha20-poly1305|aes128-gcm|aes256-gcm|aes128-ctr\+hmac-sha2-256-etm)|ChachaConstruction' \
	-benchmem -count "$count" -timeout 60m "$@" ./cipher | tee -a "$out"

go run ./internal/benchcmp < "$out"
echo
echo "raw output: $out"
