package htmlreport

import (
	"io"

	"github.com/sendtrace/sendtrace/internal/outfile"
)

// WriteFile writes a page to path through write. Like a recording, the
// page is created 0600 (it names the traced machine's processes and
// peers), and an existing file is only replaced with force. The page
// appears at path only once it is whole: a page that could not be
// written leaves no half page and, with force, the old file as it was.
func WriteFile(path string, force bool, write func(io.Writer) error) error {
	return outfile.Write(path, force, "page", write)
}
