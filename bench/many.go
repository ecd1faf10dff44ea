package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Many sockets: thousands of concurrent connections, each failing once,
// recorded system-wide. What matters is sendtrace's memory: its RSS and
// the BPF maps it holds.

type bpfMap struct {
	id         int
	name, typ  string
	maxEntries uint64
	keySize    uint64
	valueSize  uint64
	memlock    uint64 // bytes
	used       int    // entries in use; -1 when the map cannot be listed
}

type manyResult struct {
	conns      int
	failed     uint64
	setupSecs  float64
	rssReady   uint64 // KiB, once attached
	rssOpen    uint64 // KiB, with every socket open and failed
	rssPeak    uint64 // KiB, VmHWM before stopping
	rssSampled uint64 // KiB, highest VmRSS sampled
	maps       []bpfMap
	recorded   uint64
	total      uint64
	lost       uint64
}

func (m *manyResult) mapBytes() uint64 {
	var n uint64
	for _, x := range m.maps {
		n += x.memlock
	}
	return n
}

func (h *harness) runMany() error {
	res := &manyResult{conns: h.cfg.conns}
	h.many = res
	holder, err := h.startWorkload("hold", "-n", strconv.Itoa(h.cfg.conns))
	if err != nil {
		return err
	}
	defer holder.kill()
	w, err := h.startWorkload("many", "-n", strconv.Itoa(h.cfg.conns), "-port", strconv.Itoa(holder.firstInt()))
	if err != nil {
		return err
	}
	defer w.kill()
	file := filepath.Join(h.cfg.recordDir, fmt.Sprintf("sendtrace-bench-many-%d.jsonl", os.Getpid()))
	defer os.Remove(file)
	st, _, err := h.startSendtrace("record", "--status-interval", "0", "-o", file)
	if err != nil {
		return err
	}
	pid := st.cmd.Process.Pid
	res.rssReady = procStatus(pid, "VmRSS")

	var mu sync.Mutex
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v := procStatus(pid, "VmRSS"); v > 0 {
				mu.Lock()
				res.rssSampled = max(res.rssSampled, v)
				mu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()

	if err := w.start(); err != nil {
		_ = st.stop()
		return err
	}
	r, err := w.result()
	if err != nil {
		_ = st.stop()
		return err
	}
	res.failed, res.setupSecs = r.Failed, r.Seconds
	// Let the stream catch up, then look while every socket is open.
	time.Sleep(time.Second)
	res.rssOpen = procStatus(pid, "VmRSS")
	res.maps = mapsOf(pid)
	if err := w.finish(); err != nil {
		_ = st.stop()
		return err
	}
	time.Sleep(time.Second)
	res.rssPeak = procStatus(pid, "VmHWM")
	close(stopSampling)
	<-sampled
	if err := st.stop(); err != nil {
		return err
	}
	evLines, f, _, err := scanRecording(file)
	if err != nil {
		return err
	}
	res.recorded = evLines
	for _, t := range f.Totals {
		res.total += t.Count
	}
	res.lost = f.Lost.Kernel + f.Lost.User
	h.logf("many: %d connections, %d failed, RSS ready %s open %s peak %s, BPF maps %s",
		res.conns, res.failed, mib(res.rssReady), mib(res.rssOpen), mib(res.rssPeak), mib(res.mapBytes()/1024))
	return nil
}

// mapsOf lists the BPF maps process pid holds, from /proc/PID/fdinfo,
// with names from bpftool.
func mapsOf(pid int) []bpfMap {
	names := map[int][2]string{}
	if out, err := exec.Command("bpftool", "-j", "map", "show").Output(); err == nil {
		var list []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
			Type string `json:"type"`
		}
		if json.Unmarshal(out, &list) == nil {
			for _, m := range list {
				names[m.ID] = [2]string{m.Name, m.Type}
			}
		}
	}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	seen := map[int]bool{}
	var maps []bpfMap
	for _, e := range ents {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l != "anon_inode:bpf-map" {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		m := bpfMap{used: -1}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			switch k {
			case "map_id":
				m.id = int(n)
			case "max_entries":
				m.maxEntries = n
			case "key_size":
				m.keySize = n
			case "value_size":
				m.valueSize = n
			case "memlock":
				m.memlock = n
			}
		}
		if seen[m.id] {
			continue
		}
		seen[m.id] = true
		m.name, m.typ = names[m.id][0], names[m.id][1]
		if strings.HasSuffix(m.typ, "hash") {
			m.used = mapEntries(m.id)
		}
		maps = append(maps, m)
	}
	sort.Slice(maps, func(i, j int) bool { return maps[i].memlock > maps[j].memlock })
	return maps
}

// mapEntries counts the entries of a hash map.
func mapEntries(id int) int {
	out, err := exec.Command("bpftool", "-j", "map", "dump", "id", strconv.Itoa(id)).Output()
	if err != nil {
		return -1
	}
	var entries []json.RawMessage
	if json.Unmarshal(out, &entries) != nil {
		return -1
	}
	return len(entries)
}
