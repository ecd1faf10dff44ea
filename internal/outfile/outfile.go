// Package outfile creates the files sendtrace writes (recordings and
// HTML pages) so that nothing a user already has is lost to them: an
// existing file is replaced only with --force, never when it is one of
// the command's own inputs, and never by truncating it in place. A new
// file is written beside its name and put in place whole, so a reader
// that has the old file open keeps reading the old file, and its other
// hard links keep it.
package outfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Same reports whether a and b name the same file (the same device and
// inode), through any path, symlink or hard link. Paths that cannot be
// read are not the same as anything.
func Same(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false
	}
	return os.SameFile(sa, sb)
}

// Check says why out must not be written, or nil when it may: never
// when out is one of the command's inputs, or a file another process
// has open (another command's input or output), with or without force
// (force replaces an old output, never the data a command reads), and
// when out exists, only with force. Commands call it before they load
// anything, since a large recording takes seconds to read.
func Check(out string, force bool, inputs ...string) error {
	for _, in := range inputs {
		if in == "" || !Same(out, in) {
			continue
		}
		what := out + " is also"
		if filepath.Clean(in) != filepath.Clean(out) {
			what = out + " is the same file as " + in + ","
		}
		return fmt.Errorf("%s an input of this command: give the output another file name (--force never overwrites an input)", what)
	}
	st, err := os.Lstat(out)
	if err != nil {
		return nil
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory: give a file name for the output", out)
	}
	// A file another command has open is its input (a report reading
	// it, a recorder writing it), --force or not.
	if fst, err := os.Stat(out); err == nil && fst.Mode().IsRegular() {
		if pid, comm := openBy(fst); pid != 0 {
			return fmt.Errorf("%s is open in process %d (%s): wait until it is done, or give the output another file name (--force never replaces a file in use)", out, pid, comm)
		}
	}
	if !force {
		return existsError(out)
	}
	return nil
}

func existsError(path string) error {
	return fmt.Errorf("%s exists: give a new file name, or --force to overwrite it", path)
}

// File is an output file being written. Until Commit it has no name of
// its own (a hidden temporary beside the one asked for), except when the
// name is a device or a pipe, which is written in place.
type File struct {
	*os.File
	path    string // the name asked for
	target  string // where the file goes: path, or the file a symlink at path names
	tmp     string // "" when writing in place, or once committed
	force   bool
	inPlace bool // a device or a pipe
	old     bool // a file had the name before
}

// Create starts the file that Commit puts at path: a new file, mode
// 0600 (recordings and pages name the traced machine's processes and
// peers). Without force, an existing path is refused. With force, an
// existing regular file is replaced at Commit, and a symlink's target
// rather than the link; a device or a pipe (/dev/stdout) is written in
// place and never removed.
func Create(path string, force bool) (*File, error) {
	target, old := path, false
	if st, err := os.Lstat(path); err == nil {
		old = true
		if !force {
			return nil, existsError(path)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			if t, err := filepath.EvalSymlinks(path); err == nil {
				target = t
			}
		}
		if tst, err := os.Stat(target); err == nil && !tst.Mode().IsRegular() {
			if tst.IsDir() {
				return nil, fmt.Errorf("%s is a directory: give a file name for the output", path)
			}
			f, err := os.OpenFile(target, os.O_WRONLY, 0)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", path, unwrap(err))
			}
			return &File{File: f, path: path, target: target, force: force, inPlace: true, old: true}, nil
		}
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*.part")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w: give a file in a directory you can write to", path, unwrap(err))
	}
	return &File{File: f, path: path, target: target, tmp: f.Name(), force: force, old: old}, nil
}

// Commit gives the file its name. Without force it fails, and removes
// the file, when another has taken the name meanwhile.
func (f *File) Commit() error {
	if f.tmp == "" {
		return nil
	}
	var err error
	if f.force {
		err = os.Rename(f.tmp, f.target)
	} else if err = os.Link(f.tmp, f.target); errors.Is(err, fs.ErrExist) {
		err = existsError(f.path)
	} else if err != nil {
		// A file system without hard links: the name was free a moment
		// ago, when Create looked.
		if _, lerr := os.Lstat(f.target); lerr == nil {
			err = existsError(f.path)
		} else {
			err = os.Rename(f.tmp, f.target)
		}
	} else {
		err = os.Remove(f.tmp)
	}
	if err != nil {
		os.Remove(f.tmp)
		var le *os.LinkError
		if errors.As(err, &le) {
			err = fmt.Errorf("write %s: %w", f.path, le.Err)
		}
		return err
	}
	f.tmp = ""
	return nil
}

// Abort closes the file and removes it if it was not yet committed; an
// older file at its name is left as it was.
func (f *File) Abort() {
	f.File.Close()
	if f.tmp != "" {
		os.Remove(f.tmp)
		f.tmp = ""
	}
}

// Write writes a whole file through write and puts it at path only once
// it is complete and on disk: a failure leaves no partial file and, with
// force, the old file as it was. The error is one line that says what to
// do; what names the file in it ("page").
func Write(path string, force bool, what string, write func(io.Writer) error) error {
	f, err := Create(path, force)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	// Only the first error: a full disk fails the write and then the
	// flush, and one cause is one line.
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && !f.inPlace {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		f.Abort()
		return f.writeError(what, err)
	}
	return f.Commit()
}

// writeError is the one line for a failed write of what: the cause
// without the temporary file's name, what is left, and what to do.
func (f *File) writeError(what string, err error) error {
	err = unwrap(err)
	left := "no file was written"
	switch {
	case f.inPlace:
		left = f.path + " holds what was written before the error"
	case f.old:
		left = f.path + " keeps its old contents"
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("write %s %s: %w: free space there, or give a file on another file system; %s", what, f.path, err, left)
	}
	return fmt.Errorf("write %s %s: %w; %s", what, f.path, err, left)
}

// unwrap drops an *os.PathError's operation and path (here, the
// temporary file's), which the messages give better.
func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
