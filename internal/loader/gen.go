package loader

// scripts/bpf-cc runs clang 19 where the objects come out the same in
// every checkout; see its comment.
//
//go:generate go tool bpf2go -cc ../../scripts/bpf-cc -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type event -type totals_key -type totals_val -type dst_key -type dst_val -type owner -type cidr -type event_kind -type event_layer -type counter -type limits -type retrans_kind -type drop_dir -type owner_via sendtrace ../../bpf/sendtrace.bpf.c -- -I../../bpf/headers -I../../bpf
//
// The legacy object is the same source for kernels before 5.11, whose
// tracing programs have no socket local storage (see SENDTRACE_LEGACY).
//
//go:generate go tool bpf2go -cc ../../scripts/bpf-cc -cflags "-O2 -g -Wall -Werror -DSENDTRACE_LEGACY" -target amd64,arm64 sendtraceLegacy ../../bpf/sendtrace.bpf.c -- -I../../bpf/headers -I../../bpf
