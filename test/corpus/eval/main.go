// Command eval scores the diagnosis on a recorded fault corpus (see
// package corpus): it replays each case's recording as `sendtrace report`
// does, prints the confusion matrix and the targets, and writes
// docs/diagnosis.md. make diagnose-eval records the corpus live first.
//
//	go run ./test/corpus/eval -dir DIR [-again DIR2] [-doc docs/diagnosis.md]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/sendtrace/sendtrace/test/corpus"
)

func main() {
	dir := flag.String("dir", "", "directory of the recordings (NAME.jsonl.zst)")
	again := flag.String("again", "", "directory of a sample recorded a second time")
	doc := flag.String("doc", "", "markdown file to write (docs/diagnosis.md)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "eval: -dir DIR is required: the directory make diagnose-eval recorded the corpus to")
		os.Exit(2)
	}
	rs := corpus.Evaluate(*dir)
	var againRs []corpus.Result
	if *again != "" {
		againRs = corpus.Evaluate(*again)
	}
	var b bytes.Buffer
	write(&b, rs, againRs)
	if *doc == "" {
		os.Stdout.Write(b.Bytes())
		return
	}
	if err := os.WriteFile(*doc, b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(1)
	}
	// The terminal gets the numbers; the file has the rest.
	var short bytes.Buffer
	short.WriteString("Confusion matrix (diagnosis × true cause; h/m/l: confidence):\n\n")
	corpus.WriteMatrix(&short, rs)
	short.WriteString("\nTargets:\n\n")
	corpus.WriteTargets(&short, corpus.Count(rs))
	writeAgreement(&short, rs, againRs)
	writeMisses(&short, rs)
	os.Stdout.Write(short.Bytes())
	fmt.Printf("\nwrote %s\n", *doc)
}

func writeAgreement(b *bytes.Buffer, rs, againRs []corpus.Result) {
	if againRs == nil {
		return
	}
	same, of, differ := corpus.Agreement(rs, againRs)
	fmt.Fprintf(b, "\nThe same fault recorded twice: %d of %d cases got the same answer.\n", same, of)
	for _, d := range differ {
		fmt.Fprintf(b, "- %s\n", d)
	}
}

func writeMisses(b *bytes.Buffer, rs []corpus.Result) {
	fmt.Fprintf(b, "\nCases not named correctly:\n\n")
	n := 0
	for _, r := range rs {
		switch {
		case errors.Is(r.Err, fs.ErrNotExist):
			fmt.Fprintf(b, "- `%s` (%s): not recorded: the lab failed to build it (the recorder's output says why)\n", r.Case.Name, r.Case.Cause)
		case r.Err != nil:
			fmt.Fprintf(b, "- `%s` (%s): %v\n", r.Case.Name, r.Case.Cause, r.Err)
		case r.Verdict.Class != corpus.Right:
			fmt.Fprintf(b, "- `%s` (%s): %s, answered %s\n", r.Case.Name, r.Case.Cause, r.Verdict.Class, strings.Join(r.Answer, ", "))
		default:
			continue
		}
		n++
	}
	if n == 0 {
		b.WriteString("none\n")
	}
}

func write(b *bytes.Buffer, rs, againRs []corpus.Result) {
	t := corpus.Count(rs)
	b.WriteString(intro)
	fmt.Fprintf(b, "## Targets\n\nMeasured by `make diagnose-eval` on kernel %s, over %d cases.\n\n", kernel(), t.Cases)
	corpus.WriteTargets(b, t)
	b.WriteString("\n## Confusion matrix\n\n" + matrixNote)
	corpus.WriteMatrix(b, rs)
	b.WriteString("\n## Repeatability\n")
	if againRs != nil {
		writeAgreement(b, rs, againRs)
	} else {
		b.WriteString("\nNot measured in this run.\n")
	}
	b.WriteString("\n## Wrong and unknown answers\n")
	writeMisses(b, rs)
	b.WriteString("\n## The cases\n\n| case | cause | behaviour | client | when | where | family | answer | verdict |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		c := r.Case
		ans, v := strings.Join(r.Answer, ", "), r.Verdict.Class
		if r.Err != nil {
			ans, v = "not recorded", ""
		}
		if ans == "" {
			ans = "none"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Name, c.Cause, c.Behaviour, c.Client, c.When, c.Where, c.Family(), ans, v)
	}
	b.WriteString("\nHow each case is built:\n\n")
	seen := map[string]bool{}
	for _, r := range rs {
		k := strings.TrimSuffix(strings.TrimSuffix(r.Case.Name, "_v4"), "_v6")
		if seen[k] {
			continue
		}
		seen[k] = true
		fmt.Fprintf(b, "- `%s`: %s.\n", k, r.Case.Note)
	}
	b.WriteString(pinned)
	b.WriteString(leftOut)
	b.WriteString(rules)
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
