package htmlreport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// WriteFile writes a page to path through write. Like a recording, the
// page is created 0600 (it names the traced machine's processes and
// peers), and an existing file is only replaced with force. A page that
// could not be written whole is removed, so that no half page is left.
func WriteFile(path string, force bool, write func(io.Writer) error) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s exists: give a new file name, or --force to overwrite it", path)
	}
	if err != nil {
		return fmt.Errorf("create page: %w: give a file in a directory you can write to", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	err = errors.Join(write(bw), bw.Flush(), f.Close())
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write page %s: %w", path, err)
	}
	return nil
}
