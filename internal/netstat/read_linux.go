package netstat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Files are one namespace's counter files, held open. An open file of
// /proc/PID/net keeps showing the namespace it was opened in, after PID
// has exited or the namespace lost its name: the kernel holds the
// namespace for as long as the file is open.
type Files struct {
	snmp, netstat, snmp6 *os.File
}

// Open opens the counter files of dir: /proc/PID/net for the namespace
// of PID, /proc/thread-self/net for the calling thread's.
func Open(dir string) (*Files, error) {
	f := &Files{}
	var err error
	if f.snmp, err = os.Open(filepath.Join(dir, "snmp")); err != nil {
		return nil, err
	}
	if f.netstat, err = os.Open(filepath.Join(dir, "netstat")); err != nil {
		f.Close()
		return nil, err
	}
	// A kernel or namespace without IPv6 has no snmp6; the rest stands.
	if f.snmp6, err = os.Open(filepath.Join(dir, "snmp6")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Read reads every counter now.
func (f *Files) Read() (Counters, error) {
	snmp, err := readAt0(f.snmp)
	if err != nil {
		return nil, err
	}
	netstat, err := readAt0(f.netstat)
	if err != nil {
		return nil, err
	}
	var snmp6 []byte
	if f.snmp6 != nil {
		if snmp6, err = readAt0(f.snmp6); err != nil {
			return nil, err
		}
	}
	return Parse(snmp, netstat, snmp6)
}

// readAt0 reads the file again from its start: seq files regenerate
// their contents on every read from offset 0.
func readAt0(f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return b, nil
}

// Close closes the files, letting the namespace go.
func (f *Files) Close() error {
	var errs []error
	for _, x := range []*os.File{f.snmp, f.netstat, f.snmp6} {
		if x != nil {
			errs = append(errs, x.Close())
		}
	}
	return errors.Join(errs...)
}

// Read reads the counters of dir once.
func Read(dir string) (Counters, error) {
	f, err := Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Read()
}
