package testutil

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Page is one HTML file opened in headless Chromium through the DevTools
// protocol over a pipe (--remote-debugging-pipe: requests on fd 3,
// answers on fd 4, each JSON message ended by a NUL byte). No network
// port, no npm, no driver binary: what a test needs is to load a page,
// hear every request and console error it makes, ask the DOM questions
// and take screenshots.
type Page struct {
	t       testing.TB
	cmd     *exec.Cmd
	in      *os.File
	msgs    chan cdpMessage
	session string
	next    int
	events  []cdpMessage

	// Requests lists the URL of every request the page made, the page
	// itself included.
	Requests []string
	// LoadTime is from the navigation to the page's load event.
	LoadTime time.Duration
	// Errors lists console errors, uncaught exceptions and browser log
	// entries of level error (a refused load, a CSP violation).
	Errors []string
}

type cdpMessage struct {
	ID        int             `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// Chromium returns the browser's path, failing the test when it is not
// installed: scripts/deps.sh installs it, so a machine without it is
// not set up, and a skipped browser test would prove nothing.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: run scripts/deps.sh (apt-get install chromium)")
	return ""
}

// OpenPage starts a headless Chromium with a fresh profile, opens the
// file at path with a window width px wide, and waits for its load event.
func OpenPage(t testing.TB, ctx context.Context, path string, width int) *Page {
	t.Helper()
	bin := Chromium(t)
	profile := t.TempDir()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--no-first-run",
		"--disable-sync", "--disable-extensions", "--user-data-dir="+profile,
		"--remote-debugging-pipe", "about:blank")
	toBrowser, in, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser}
	var stderr LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	toBrowser.Close()
	fromBrowser.Close()
	p := &Page{t: t, cmd: cmd, in: in, msgs: make(chan cdpMessage, 256)}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		defer close(p.msgs)
		r := bufio.NewReaderSize(out, 1<<20)
		for {
			b, err := r.ReadBytes(0)
			if err != nil {
				return
			}
			var m cdpMessage
			if json.Unmarshal(b[:len(b)-1], &m) == nil {
				p.msgs <- m
			}
		}
	}()

	var target struct {
		TargetID string `json:"targetId"`
	}
	p.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var att struct {
		SessionID string `json:"sessionId"`
	}
	p.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &att)
	p.session = att.SessionID
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		p.call(m, nil, nil)
	}
	p.SetWidth(width, 900)
	start := time.Now()
	p.call("Page.navigate", map[string]any{"url": "file://" + path}, nil)
	p.wait("Page.loadEventFired")
	p.LoadTime = time.Since(start)
	// Let late console messages and requests arrive.
	p.Eval("new Promise(r => setTimeout(r, 200))", nil)
	return p
}

// RequireSelfContained fails the test when the page at path asked for
// anything but itself, or the browser logged an error.
func (p *Page) RequireSelfContained(path string) {
	p.t.Helper()
	for _, u := range p.Requests {
		if u != "file://"+path {
			p.t.Errorf("the page requested %s", u)
		}
	}
	if len(p.Requests) == 0 {
		p.t.Error("no request seen at all: the browser did not report the page's own load")
	}
	for _, e := range p.Errors {
		p.t.Errorf("browser error: %s", e)
	}
}

// SetWidth sizes the page's window.
func (p *Page) SetWidth(width, height int) {
	p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
}

// DarkScheme makes the page believe the reader prefers a dark theme.
func (p *Page) DarkScheme(dark bool) {
	v := "light"
	if dark {
		v = "dark"
	}
	p.call("Emulation.setEmulatedMedia", map[string]any{"features": []map[string]string{{"name": "prefers-color-scheme", "value": v}}}, nil)
}

// PrintMedia makes the page lay out as it prints ("print" media), with
// the reader's theme dark or not, as a browser whose reader prefers a dark
// theme prints it.
func (p *Page) PrintMedia(dark bool) {
	v := "light"
	if dark {
		v = "dark"
	}
	p.call("Emulation.setEmulatedMedia", map[string]any{"media": "print", "features": []map[string]string{{"name": "prefers-color-scheme", "value": v}}}, nil)
}

// PrintToPDF prints the page as the browser's "Save as PDF" does, on A4,
// and returns the PDF.
func (p *Page) PrintToPDF() []byte {
	p.t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	p.call("Page.printToPDF", map[string]any{"paperWidth": 8.27, "paperHeight": 11.69, "printBackground": true}, &res)
	b, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		p.t.Fatal(err)
	}
	return b
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its JSON value into out.
func (p *Page) Eval(expr string, out any) {
	p.t.Helper()
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if res.ExceptionDetails != nil {
		p.t.Fatalf("evaluate %s: %s %s", expr, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(res.Result.Value, out); err != nil {
			p.t.Fatalf("evaluate %s: decode %s: %v", expr, res.Result.Value, err)
		}
	}
}

// Screenshot writes the whole page, not only the window, as a PNG.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	var res struct {
		Data string `json:"data"`
	}
	p.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res)
	p.writePNG(res.Data, path)
}

// ScreenshotTop writes the top of the page, height pixels of it, as a
// PNG: what a reader sees first.
func (p *Page) ScreenshotTop(path string, height int) {
	p.t.Helper()
	var w int
	p.Eval(`document.documentElement.clientWidth`, &w)
	var res struct {
		Data string `json:"data"`
	}
	p.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": w, "height": height, "scale": 1}}, &res)
	p.writePNG(res.Data, path)
}

// ScreenshotOf writes, as a PNG, the part of the page that the first
// element matching a CSS selector covers.
func (p *Page) ScreenshotOf(selector, path string) {
	p.t.Helper()
	sel, _ := json.Marshal(selector)
	var r struct{ X, Y, W, H float64 }
	p.Eval(`(() => { const e = document.querySelector(`+string(sel)+`); e.scrollIntoView();
		const b = e.getBoundingClientRect();
		return {x: b.left + scrollX, y: b.top + scrollY, w: b.width, h: b.height}; })()`, &r)
	var res struct {
		Data string `json:"data"`
	}
	p.call("Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": r.X, "y": r.Y, "width": r.W, "height": r.H, "scale": 1}}, &res)
	p.writePNG(res.Data, path)
}

func (p *Page) writePNG(data, path string) {
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *Page) call(method string, params any, out any) {
	p.t.Helper()
	p.next++
	id := p.next
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if p.session != "" && !strings.HasPrefix(method, "Target.") {
		msg["sessionId"] = p.session
	}
	b, _ := json.Marshal(msg)
	if _, err := p.in.Write(append(b, 0)); err != nil {
		p.t.Fatalf("chromium %s: %v", method, err)
	}
	m, err := p.read(func(m cdpMessage) bool { return m.ID == id })
	if err != nil {
		p.t.Fatalf("chromium %s: %v", method, err)
	}
	if m.Error != nil {
		p.t.Fatalf("chromium %s: %s", method, m.Error.Message)
	}
	if out != nil {
		if err := json.Unmarshal(m.Result, out); err != nil {
			p.t.Fatalf("chromium %s: %v", method, err)
		}
	}
}

func (p *Page) wait(method string) {
	p.t.Helper()
	for i, m := range p.events {
		if m.Method == method {
			p.events = append(p.events[:i], p.events[i+1:]...)
			return
		}
	}
	if _, err := p.read(func(m cdpMessage) bool { return m.Method == method }); err != nil {
		p.t.Fatalf("chromium: waiting for %s: %v", method, err)
	}
}

// read returns the first message that matches, noting every request and
// error on the way.
func (p *Page) read(match func(cdpMessage) bool) (cdpMessage, error) {
	timeout := time.After(60 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				return cdpMessage{}, errors.New("the browser closed its pipe")
			}
			p.note(m)
			if match(m) {
				return m, nil
			}
			if m.Method != "" {
				p.events = append(p.events, m)
			}
		case <-timeout:
			return cdpMessage{}, errors.New("no answer in 60s")
		}
	}
}

func (p *Page) note(m cdpMessage) {
	switch m.Method {
	case "Network.requestWillBeSent":
		var ev struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		if json.Unmarshal(m.Params, &ev) == nil {
			p.Requests = append(p.Requests, ev.Request.URL)
		}
	case "Runtime.consoleAPICalled":
		var ev struct {
			Type string            `json:"type"`
			Args []json.RawMessage `json:"args"`
		}
		if json.Unmarshal(m.Params, &ev) == nil && (ev.Type == "error" || ev.Type == "assert") {
			p.Errors = append(p.Errors, fmt.Sprintf("console.%s %s", ev.Type, ev.Args))
		}
	case "Runtime.exceptionThrown":
		p.Errors = append(p.Errors, "exception "+string(m.Params))
	case "Log.entryAdded":
		var ev struct {
			Entry struct {
				Level, Text, URL string
			} `json:"entry"`
		}
		if json.Unmarshal(m.Params, &ev) == nil && ev.Entry.Level == "error" {
			p.Errors = append(p.Errors, "log "+ev.Entry.Text+" "+ev.Entry.URL)
		}
	}
}
