package outfile

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A ready file says that a tracing command is running: lines of
// "key<TAB>value" (each layer's hook, serve's listen address). It is
// written where there is no file, or over an old ready file, and never
// over anything else: a mistyped --ready-file that names a recording
// would otherwise be its end.

// CheckReady says why a ready file must not be written at path, or nil
// when it may: the name is free, or holds an old ready file.
func CheckReady(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if st.IsDir() {
		return fmt.Errorf("--ready-file %s is a directory: give a file name", path)
	}
	if !st.Mode().IsRegular() || !isReady(path) {
		return fmt.Errorf("--ready-file %s exists and is not a ready file: give a new file name (a ready file replaces only an old ready file)", path)
	}
	return nil
}

// WriteReady writes the ready file whole: a new file beside path, renamed
// onto it, so a watcher that sees the name reads every line. An existing
// file at path that is not a ready file is left as it was.
func WriteReady(path, text string) error {
	if err := CheckReady(path); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return fmt.Errorf("write ready file %s: %w", path, unwrap(err))
	}
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write ready file %s: %w", path, unwrap(err))
	}
	return nil
}

// RemoveReady removes the ready file at path when it still is one: a
// stopped command is not ready. Whatever else has taken the name since
// is left.
func RemoveReady(path string) error {
	if st, err := os.Lstat(path); err != nil || !st.Mode().IsRegular() || !isReady(path) {
		return nil
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove ready file: %w", err)
	}
	return nil
}

// isReady reports whether the file at path holds a ready file: nothing,
// or short lines of "key<TAB>value" in printable text.
func isReady(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil || len(b) == 64<<10 {
		return false
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return false
	}
	if len(b) == 0 {
		return true
	}
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		key, value, ok := bytes.Cut(line, []byte("\t"))
		if !ok || len(key) == 0 || len(value) == 0 || bytes.IndexFunc(line, func(r rune) bool { return r != '\t' && (r < ' ' || r > '~') }) >= 0 {
			return false
		}
	}
	return true
}
