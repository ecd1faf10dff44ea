package record

import (
	"fmt"
	"time"

	"github.com/sendtrace/sendtrace/internal/outfile"
)

// DuplicateError says that two of a command's recordings are one: the
// same file (through any path or link), or two files that hold the same
// recording (SameSession).
type DuplicateError struct {
	A, B     string
	SameFile bool
	Host     string
	Start    time.Time
}

func (e *DuplicateError) Error() string {
	if e.SameFile {
		if e.A == e.B {
			return fmt.Sprintf("%s is given twice", e.A)
		}
		return fmt.Sprintf("%s and %s are the same file", e.A, e.B)
	}
	return fmt.Sprintf("%s and %s hold the same recording (host %s, started %s)", e.A, e.B, e.Host, e.Start.UTC().Format("2006-01-02 15:04:05.000 UTC"))
}

// FindDuplicate returns a *DuplicateError for the first two of paths that
// are one recording, or nil. It reads only the headers; a file whose
// header cannot be read is left to the reader that loads it, which says
// what is wrong with it.
func FindDuplicate(paths []string) error {
	headers := make([]*Header, len(paths))
	for i, p := range paths {
		if rd, err := Open(p); err == nil {
			headers[i] = rd.Header
			rd.Close()
		}
	}
	for j := range paths {
		for i := range j {
			if outfile.Same(paths[i], paths[j]) {
				return &DuplicateError{A: paths[i], B: paths[j], SameFile: true}
			}
			a, b := headers[i], headers[j]
			if a != nil && b != nil && SameSession(&a.Description, &b.Description) {
				return &DuplicateError{A: paths[i], B: paths[j], Host: a.Hostname, Start: a.StartTime}
			}
		}
	}
	return nil
}
