package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReportAgentURLRefused: each way an agent's URL can be wrong, or
// refused, is one line saying what to give, and no temporary file is
// left behind.
func TestReportAgentURLRefused(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	auth := filepath.Join(dir, "sre.auth")
	if err := os.WriteFile(auth, []byte("sre:wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badAuth := filepath.Join(dir, "bad.auth")
	if err := os.WriteFile(badAuth, []byte("no colon\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notCA := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notCA, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Behind basic auth, as the exporter-toolkit answers before serve's
	// handlers: no agent header.
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "sre" || p != "right" {
			w.Header().Set("WWW-Authenticate", "Basic")
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
	}))
	defer locked.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "<html>hello</html>")
	}))
	defer other.Close()
	off := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(agentHeader, "test")
		http.Error(w, "/recording is off: start serve with --flight-dir DIR --serve-recordings", http.StatusNotFound)
	}))
	defer off.Close()
	tlsAgent := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsAgent.Close()
	plainURL := "http://" + strings.TrimPrefix(tlsAgent.URL, "https://")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"https://", "--since", "2m"}, `invalid agent URL "https://": no host: give http:// or https:// and the agent's host and port`},
		{[]string{"http://node-a:99999", "--since", "2m"}, `invalid agent URL "http://node-a:99999": invalid port`},
		{[]string{"https://sre:pw@node-a:9464", "--since", "2m"}, `agent URL "https://sre:xxxxx@node-a:9464" has a user in it: give the user and password in --auth-file instead`},
		{[]string{other.URL}, "missing --since: say where the window starts, such as --since 15m"},
		{[]string{other.URL, "--since", "lately"}, `invalid --since "lately": give a duration ago`},
		{[]string{filepath.Join(dir, "x.jsonl"), "--since", "2m"}, "cannot read " + filepath.Join(dir, "x.jsonl")},
		{[]string{other.URL, other.URL, "--since", "2m"}, other.URL + " is given twice"},
		{[]string{locked.URL, "--since", "2m"}, "agent " + locked.URL + " asks for a user and password: give --auth-file FILE, whose one line is USER:PASSWORD"},
		{[]string{locked.URL, "--since", "2m", "--auth-file", auth}, "agent " + locked.URL + " refused the user and password of --auth-file " + auth + " (401 Unauthorized)"},
		{[]string{locked.URL, "--since", "2m", "--auth-file", badAuth}, "invalid --auth-file " + badAuth + ": give one line, USER:PASSWORD"},
		{[]string{locked.URL, "--since", "2m", "--ca-file", notCA}, "invalid --ca-file " + notCA + ": no PEM certificate in it"},
		{[]string{other.URL, "--since", "2m"}, other.URL + ` is not a sendtrace agent (it answered "200 OK"): give the address of sendtrace serve`},
		{[]string{off.URL, "--since", "2m"}, "agent " + off.URL + ": /recording is off: start serve with --flight-dir DIR --serve-recordings"},
		{[]string{tlsAgent.URL, "--since", "2m"}, "agent " + tlsAgent.URL + ": its certificate is not trusted"},
		{[]string{plainURL, "--since", "2m"}, "agent " + plainURL + " speaks TLS: give its URL with https://"},
		{[]string{"http://198.18.0.1:1", "http://198.18.0.1:1/x", "--since", "2m", "--html", filepath.Join(dir, "page.html"), "--html-conns", "0"}, "invalid --html-conns 0"},
	} {
		err := sendtrace(t, append([]string{"report"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("report %q: %v\nwant one line containing %q", c.args, err, c.want)
		}
	}
	f := filepath.Join(dir, "r.jsonl")
	writeRecording(t, f, time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--since", "2m"}, "--since, --until and the filters pick a window of a flight recording: give --flight DIR, or agents' URLs"},
		{[]string{"--auth-file", auth}, "--auth-file goes with an agent's URL"},
		{[]string{"--ca-file", notCA}, "--ca-file goes with an agent's URL"},
	} {
		args := append([]string{"report", f}, c.flags...)
		if err := sendtrace(t, args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("report %q: %v, want %q", args, err, c.want)
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, "sendtrace-agent-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}
