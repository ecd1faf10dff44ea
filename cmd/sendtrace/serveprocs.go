package main

import (
	"os"
	"runtime"
)

// serveProcs is how many CPUs the Go runtime of `sendtrace serve` uses at
// most. The agent reads a ring buffer and answers scrapes; a runtime that
// keeps per-CPU caches and GC workers for every CPU of a large node would
// make its memory grow with the node (GOMAXPROCS=16 against 2 added about
// 1 MiB of anonymous memory here).
const serveProcs = 4

// limitProcs caps GOMAXPROCS at serveProcs unless the environment sets it.
func limitProcs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) > serveProcs {
		runtime.GOMAXPROCS(serveProcs)
	}
}
