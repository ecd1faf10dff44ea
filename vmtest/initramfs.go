package main

import (
	"bufio"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// entry is one file in the guest's initramfs.
type entry struct {
	mode   uint32 // permission bits plus one of the S_IF* type bits below
	src    string // host file to copy (regular files)
	data   []byte // inline content (regular files without src)
	target string // symlink target
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFLNK = 0o120000
)

// initramfs collects files by guest path and writes them as a newc cpio
// archive (uncompressed: the kernel then has nothing to decompress, which
// matters under TCG).
type initramfs struct {
	files map[string]*entry
}

func newInitramfs() *initramfs {
	return &initramfs{files: map[string]*entry{".": {mode: sIFDIR | 0o755}}}
}

func clean(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

func (r *initramfs) mkdirAll(p string) {
	p = clean(p)
	for p != "" && p != "." && p != "/" {
		if _, ok := r.files[p]; !ok {
			r.files[p] = &entry{mode: sIFDIR | 0o755}
		}
		p = path.Dir(p)
		if p == "." {
			break
		}
	}
}

func (r *initramfs) addData(guest string, data []byte, perm uint32) {
	guest = clean(guest)
	r.mkdirAll(path.Dir(guest))
	r.files[guest] = &entry{mode: sIFREG | perm, data: data}
}

func (r *initramfs) addSymlink(guest, target string) {
	guest = clean(guest)
	r.mkdirAll(path.Dir(guest))
	r.files[guest] = &entry{mode: sIFLNK | 0o777, target: target}
}

// addFile copies one host file (following symlinks) to a guest path. When
// the file is a dynamically linked ELF program, its shared libraries and
// the dynamic loader are added at the paths ldd reports.
func (r *initramfs) addFile(host, guest string) error {
	st, err := os.Stat(host)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return r.addTree(host, guest)
	}
	guest = clean(guest)
	r.mkdirAll(path.Dir(guest))
	r.files[guest] = &entry{mode: sIFREG | uint32(st.Mode().Perm()), src: host}
	if st.Mode().Perm()&0o111 != 0 {
		return r.addLibsOf(host)
	}
	return nil
}

func (r *initramfs) addTree(host, guest string) error {
	return filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(host, p)
		g := path.Join(guest, filepath.ToSlash(rel))
		if d.IsDir() {
			r.mkdirAll(g)
			return nil
		}
		return r.addFile(p, g)
	})
}

// addLibsOf adds the shared libraries of a dynamically linked program.
func (r *initramfs) addLibsOf(host string) error {
	f, err := elf.Open(host)
	if err != nil {
		return nil // not an ELF file: a script or data
	}
	interp := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp = true
		}
	}
	f.Close()
	if !interp {
		return nil // static
	}
	out, err := exec.Command("ldd", host).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", host, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		// "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)"
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"
		fields := strings.Fields(sc.Text())
		var lib string
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
			lib = fields[2]
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			lib = fields[0]
		default:
			continue
		}
		g := clean(lib)
		if _, ok := r.files[g]; ok {
			continue
		}
		st, err := os.Stat(lib)
		if err != nil {
			return fmt.Errorf("%s needs %s: %w", host, lib, err)
		}
		r.mkdirAll(path.Dir(g))
		r.files[g] = &entry{mode: sIFREG | uint32(st.Mode().Perm()), src: lib}
	}
	return nil
}

// write emits the archive. Parents sort before their children.
func (r *initramfs) write(w io.Writer) error {
	names := make([]string, 0, len(r.files))
	for n := range r.files {
		names = append(names, n)
	}
	sort.Strings(names)
	bw := bufio.NewWriterSize(w, 1<<20)
	ino := uint32(1)
	for _, n := range names {
		e := r.files[n]
		var body []byte
		var src *os.File
		var size int64
		switch e.mode &^ 0o7777 {
		case sIFREG:
			if e.src != "" {
				f, err := os.Open(e.src)
				if err != nil {
					return err
				}
				st, err := f.Stat()
				if err != nil {
					f.Close()
					return err
				}
				src, size = f, st.Size()
			} else {
				body, size = e.data, int64(len(e.data))
			}
		case sIFLNK:
			body, size = []byte(e.target), int64(len(e.target))
		}
		if err := cpioHeader(bw, ino, e.mode, size, n); err != nil {
			return err
		}
		ino++
		if src != nil {
			_, err := io.Copy(bw, src)
			src.Close()
			if err != nil {
				return err
			}
		} else if _, err := bw.Write(body); err != nil {
			return err
		}
		if err := pad4(bw, size); err != nil {
			return err
		}
	}
	if err := cpioHeader(bw, 0, 0, 0, "TRAILER!!!"); err != nil {
		return err
	}
	return bw.Flush()
}

func cpioHeader(w io.Writer, ino, mode uint32, size int64, name string) error {
	nlink := 1
	if mode&^0o7777 == sIFDIR {
		nlink = 2
	}
	// newc: magic, ino, mode, uid, gid, nlink, mtime, filesize,
	// devmajor, devminor, rdevmajor, rdevminor, namesize, check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if _, err := io.WriteString(w, hdr+name+"\x00"); err != nil {
		return err
	}
	return pad4(w, int64(len(hdr)+len(name)+1))
}

func pad4(w io.Writer, n int64) error {
	if p := (4 - n%4) % 4; p != 0 {
		_, err := w.Write(make([]byte, p))
		return err
	}
	return nil
}
