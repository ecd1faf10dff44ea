package loader

// -ffile-compilation-dir=. keeps the checkout's path out of clang's
// arguments: with the absolute path there, clang 19 orders some BTF types
// differently in checkouts at different paths, and the committed objects
// would look stale wherever they were not generated.
//
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -ffile-compilation-dir=." -target amd64,arm64 -type event -type totals_key -type totals_val -type dst_key -type dst_val -type owner -type cidr -type event_kind -type event_layer -type counter -type limits -type retrans_kind -type drop_dir sendtrace ../../bpf/sendtrace.bpf.c -- -I../../bpf/headers -I../../bpf
