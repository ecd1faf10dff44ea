// Command mkkernels writes docs/kernels.md from the plans a kernel matrix
// run saved: each guest's plan in DIR/LABEL.txt, which holds a
// `sendtrace check -o json` line (`make vmtest` saves them in .vmbin/plans).
//
//	go run ./internal/hookexpect/mkkernels -plans .vmbin/plans > docs/kernels.md
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sendtrace/sendtrace/internal/hookexpect"
)

func main() {
	dir := flag.String("plans", ".vmbin/plans", "directory of LABEL.txt plans, each with a `sendtrace check -o json` line")
	flag.Parse()
	files, err := filepath.Glob(filepath.Join(*dir, "*.txt"))
	if err != nil || len(files) == 0 {
		fmt.Fprintf(os.Stderr, "mkkernels: no plans in %s: run make vmtest first\n", *dir)
		os.Exit(1)
	}
	results := map[string]*hookexpect.CheckResult{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkkernels:", err)
			os.Exit(1)
		}
		r, err := hookexpect.ReadCheck(fh)
		fh.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "mkkernels: %s: %v\n", f, err)
			os.Exit(1)
		}
		results[strings.TrimSuffix(filepath.Base(f), ".txt")] = r
	}
	if err := hookexpect.WriteKernelsDoc(os.Stdout, results, "a `make vmtest` run"); err != nil {
		fmt.Fprintln(os.Stderr, "mkkernels:", err)
		os.Exit(1)
	}
}
