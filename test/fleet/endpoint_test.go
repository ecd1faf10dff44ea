package fleet_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/testutil"
	"golang.org/x/crypto/bcrypt"
)

// TestServeRefusesBadFlags: an empty --listen (which would bind every
// interface on a random port) and a --series-ttl that never expires a
// series are refused at once, with one line that says what to give.
func TestServeRefusesBadFlags(t *testing.T) {
	ctx := testutil.Context(t, 2*time.Minute)
	addr := "--listen=" + freeAddr(t)
	dir := t.TempDir()
	web := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := web("plain.yml", "basic_auth_users:\n  prometheus: secret\n")
	noKey := web("nokey.yml", "tls_server_config:\n  cert_file: server.crt\n")
	typo := web("typo.yml", "tls_server_config:\n  certfile: server.crt\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen="}, `invalid --listen "": give an address and port`},
		{[]string{"--listen", " "}, `invalid --listen " ": give an address and port`},
		{[]string{addr, "--series-ttl", "0"}, "invalid --series-ttl 0s: give a duration above 0"},
		{[]string{addr, "--series-ttl=-1s"}, "invalid --series-ttl -1s: give a duration above 0"},
		// A bad web configuration file is refused before anything is
		// loaded, not found at the first scrape.
		{[]string{addr, "--web.config.file", filepath.Join(dir, "absent.yml")}, "invalid --web.config.file " + filepath.Join(dir, "absent.yml") + ": open "},
		{[]string{addr, "--web.config.file", plain}, "invalid --web.config.file " + plain + ": crypto/bcrypt: "},
		{[]string{addr, "--web.config.file", noKey}, "invalid --web.config.file " + noKey + ": missing one of key or key_file"},
		{[]string{addr, "--web.config.file", typo}, "invalid --web.config.file " + typo + ": yaml: unmarshal errors: line 2: field certfile not found"},
	} {
		ready := filepath.Join(t.TempDir(), "ready")
		args := append([]string{"serve", "--events=false", "--ready-file", ready}, tc.args...)
		// Before it refused them, serve ran with these: a wait bounded
		// by 20 s tells the two apart.
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(wctx, sendtraceBin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err := cmd.Run()
		timedOut := wctx.Err() != nil
		cancel()
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		switch {
		case timedOut:
			t.Errorf("sendtrace %q was still running after 20 s; want it refused\n%s", args, msg)
		case !errors.As(err, &ee) || ee.ExitCode() != 1:
			t.Errorf("sendtrace %q: %v, want exit status 1\n%s", args, err, msg)
		case strings.Contains(msg, "\n") || !strings.Contains(msg, tc.want):
			t.Errorf("sendtrace %q said:\n%s\nwant one line containing %q", args, msg, tc.want)
		default:
			t.Logf("sendtrace %q: %s", args, msg)
		}
		if _, err := os.Stat(ready); err == nil {
			t.Errorf("sendtrace %q wrote its ready file", args)
		}
	}
}

// readyListen is the address serve's ready file says it listens on.
func readyListen(t *testing.T, ready string) string {
	t.Helper()
	b, err := os.ReadFile(ready)
	if err != nil {
		t.Fatal(err)
	}
	var addr string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			t.Errorf("ready file line %q is not key<TAB>value", line)
		}
		if k == "listen" {
			addr = v
		}
	}
	if addr == "" {
		t.Fatalf("ready file has no listen line:\n%s", b)
	}
	return addr
}

// TestServeListenAddress: with --listen [::1]:0 serve prints the address
// it bound, port included, and its ready file has it under the hook
// plan's lines, which stay as they were for those who read them.
func TestServeListenAddress(t *testing.T) {
	ctx := fleetContext(t)
	st := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "serve", "--listen", "[::1]:0", "--events=false")
	addr := readyListen(t, st.ReadyFile)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "::1" || port == "0" || port == "" {
		t.Fatalf("ready file: listen %q, want [::1] and the port it got", addr)
	}
	b, _ := os.ReadFile(st.ReadyFile)
	if first, _, _ := strings.Cut(string(b), "\t"); first != "send-return" {
		t.Errorf("ready file starts with %q, want the hook plan first (send-return):\n%s", first, b)
	}
	line := "sendtrace: serving /metrics and /healthz on http://" + addr + " (plain HTTP, no authentication)"
	if !strings.Contains(string(st.Stderr()), line+"\n") {
		t.Errorf("stderr lacks %q:\n%s", line, st.Stderr())
	}
	code, body, err := httpGet(ctx, "http://"+addr+"/healthz")
	if err != nil || code != http.StatusOK {
		t.Errorf("/healthz on the address of the ready file: %d %s %v", code, body, err)
	}
	t.Logf("ready file:\n%s", b)
	st.Stop(t, tracerStop)
	if _, err := os.Stat(st.ReadyFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ready file after SIGINT: %v, want it removed", err)
	}
}

// pki is a CA, and a server and a client certificate it signed, as PEM
// files in one directory. The server's is for localhost, the loopback
// addresses and ips.
type pki struct {
	dir                                                  string
	caFile, serverCert, serverKey, clientCert, clientKey string
	pool                                                 *x509.CertPool
}

func newPKI(t *testing.T, ips ...netip.Addr) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{dir: dir, pool: x509.NewCertPool()}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sendtrace test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.crt", "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
		}
		for _, ip := range ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, dir, name+".crt", "CERTIFICATE", der), writePEM(t, dir, name+".key", "EC PRIVATE KEY", keyDER)
	}
	p.serverCert, p.serverKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return p
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// client is an HTTPS client that trusts the test CA, presenting the client
// certificate when withCert.
func (p *pki) client(t *testing.T, withCert bool) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.pool}
	if withCert {
		cert, err := tls.LoadX509KeyPair(p.clientCert, p.clientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// scrape GETs u with basic auth when user is not empty.
func scrape(ctx context.Context, c *http.Client, u, user, pass string) (int, string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, err
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// writeFileAtomic replaces path at once, as a configuration tool would: a
// reader sees the old file or the new one.
func writeFileAtomic(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestServeTLSBasicAuth serves /metrics with the exporters' web
// configuration file, as node_exporter reads it: TLS with a certificate
// the test's CA signed, client certificates required and verified, and a
// user with a bcrypt password hash. A real Prometheus scrapes it over
// TLS with basic auth and its client certificate, and its query API
// returns the real failed sends; a scrape without basic auth or with a
// wrong password gets 401, one without a client certificate fails its
// handshake, and plain HTTP gets no metrics.
func TestServeTLSBasicAuth(t *testing.T) {
	ctx := fleetContext(t)
	p := newPKI(t)
	password := randomHex(t, 32)
	// Relative file names, as the toolkit resolves them: against the
	// configuration file's directory.
	webYML := filepath.Join(p.dir, "web.yml")
	writeFileAtomic(t, webYML, fmt.Sprintf(`tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
basic_auth_users:
  prometheus: %s
`, bcryptHash(t, password)))

	lab := newUDPLab(t, ctx)
	st := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "serve", "--listen", "127.0.0.1:0", "--events=false",
		"--dst="+lab.Link.V4Net.String(), "--web.config.file", webYML)
	addr := readyListen(t, st.ReadyFile)
	line := "sendtrace: serving /metrics and /healthz on https://" + addr + " (TLS, client certificates, basic auth)"
	if !strings.Contains(string(st.Stderr()), line+"\n") {
		t.Errorf("stderr lacks %q:\n%s", line, st.Stderr())
	}
	base := "https://" + addr

	passFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(passFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := startPrometheusJob(t, ctx, addr, fmt.Sprintf(`    scheme: https
    basic_auth:
      username: prometheus
      password_file: %s
    tls_config:
      ca_file: %s
      cert_file: %s
      key_file: %s
`, passFile, p.caFile, p.clientCert, p.clientKey))

	a := lab.client(t, ctx, 3)
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	if n := len(failedSends(t, ctx, a)); n != 3 {
		t.Fatalf("lab: the actor saw %d failed sends, want 3", n)
	}
	prom.waitQuery(t, ctx, `up{job="sendtrace"}`, 1)
	prom.waitQuery(t, ctx, `sum(sendtrace_send_failures_total{errno="EMSGSIZE"})`, 3)
	prom.waitQuery(t, ctx, `sendtrace_build_info`, 1)

	// A real Prometheus with the client certificate and no password gets
	// nothing: its target is down, refused with 401.
	anon := startPrometheusJob(t, ctx, addr, fmt.Sprintf(`    scheme: https
    tls_config:
      ca_file: %s
      cert_file: %s
      key_file: %s
`, p.caFile, p.clientCert, p.clientKey))
	anon.waitQuery(t, ctx, `up{job="sendtrace"}`, 0)
	if lastErr := anon.lastScrapeError(t, ctx); !strings.Contains(lastErr, "401 Unauthorized") {
		t.Errorf("prometheus without basic auth: the target's last error is %q, want 401 Unauthorized", lastErr)
	} else {
		t.Logf("prometheus without basic auth: up 0, last error %q", lastErr)
	}
	if v, ok, err := anon.query(ctx, `count({__name__=~"sendtrace_.+"})`); err != nil || ok {
		t.Errorf("prometheus without basic auth has %v sendtrace series (%v %v), want none", v, ok, err)
	}

	withCert := p.client(t, true)
	code, body, _, err := scrape(ctx, withCert, base+"/metrics", "prometheus", password)
	if err != nil || code != http.StatusOK || !strings.Contains(body, "sendtrace_build_info") {
		t.Errorf("client certificate and password: %d %v, want 200 and the metrics", code, err)
	}
	for _, c := range []struct{ what, user, pass string }{
		{"no basic auth", "", ""},
		{"a wrong password", "prometheus", password + "x"},
		{"an unknown user", "root", password},
	} {
		code, body, h, err := scrape(ctx, withCert, base+"/metrics", c.user, c.pass)
		if err != nil || code != http.StatusUnauthorized || strings.Contains(body, "sendtrace_") || h.Get("WWW-Authenticate") != "Basic" {
			t.Errorf("client certificate and %s: %d %v %q, want 401 asking for basic auth and no metrics", c.what, code, err, h.Get("WWW-Authenticate"))
		} else {
			t.Logf("client certificate and %s: %d", c.what, code)
		}
	}
	// /healthz is behind the same door.
	if code, _, _, err := scrape(ctx, withCert, base+"/healthz", "", ""); err != nil || code != http.StatusUnauthorized {
		t.Errorf("/healthz without basic auth: %d %v, want 401", code, err)
	}
	if _, _, _, err := scrape(ctx, p.client(t, false), base+"/metrics", "prometheus", password); err == nil {
		t.Errorf("no client certificate: the scrape succeeded, want its handshake refused")
	} else {
		t.Logf("no client certificate: %v", err)
	}
	code, body, _, err = scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics", "prometheus", password)
	if err == nil && (code == http.StatusOK || strings.Contains(body, "sendtrace_")) {
		t.Errorf("plain HTTP: %d, want no metrics:\n%s", code, body)
	} else {
		t.Logf("plain HTTP: %d %v %q", code, err, strings.TrimSpace(body))
	}

	// Whether the port speaks TLS is fixed at start: a file that turns
	// it off is reported on SIGHUP, and connections fail until a restart
	// rather than fall back to plain HTTP (a new connection: one already
	// open has had its handshake).
	writeFileAtomic(t, webYML, fmt.Sprintf("basic_auth_users:\n  prometheus: %s\n", bcryptHash(t, password)))
	hangup(t, ctx, st, 1)
	waitStderr(t, ctx, st, "turns TLS off, but serve started with TLS: every new connection fails until it is restarted", 1)
	if code, _, _, err := scrape(ctx, p.client(t, true), base+"/metrics", "prometheus", password); err == nil {
		t.Errorf("TLS turned off under serve: %d, want the handshake to fail", code)
	}
	if code, body, _, err := scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics", "prometheus", password); err == nil && strings.Contains(body, "sendtrace_") {
		t.Errorf("TLS turned off under serve: plain HTTP got %d and the metrics", code)
	}
	_, stderr := st.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}

// waitStderr polls until sendtrace has written n lines containing s.
func waitStderr(t *testing.T, ctx context.Context, st *testutil.Sendtrace, s string, n int) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := testutil.Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		return strings.Count(string(st.Stderr()), s) >= n, nil
	}); err != nil {
		t.Fatalf("stderr has fewer than %d lines with %q:\n%s", n, s, st.Stderr())
	}
}

// hangup sends SIGHUP and checks serve answered it and is still running
// with its ready file.
func hangup(t *testing.T, ctx context.Context, st *testutil.Sendtrace, n int) {
	t.Helper()
	if err := syscall.Kill(st.PID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = testutil.Poll(wctx, 20*time.Millisecond, func() (bool, error) {
		exited, _ := st.Exited()
		return exited || strings.Count(string(st.Stderr()), "sendtrace: SIGHUP: ") >= n, nil
	})
	if exited, err := st.Exited(); exited {
		t.Fatalf("serve exited on SIGHUP: %v\n%s", err, st.Stderr())
	}
	waitStderr(t, ctx, st, "sendtrace: SIGHUP: ", n)
	if _, err := os.Stat(st.ReadyFile); err != nil {
		t.Errorf("ready file after SIGHUP: %v", err)
	}
}

// TestServeSIGHUP: serve survives SIGHUP, says so, keeps its ready file
// and still serves; before, SIGHUP ended it with status 129.
func TestServeSIGHUP(t *testing.T) {
	ctx := fleetContext(t)
	addr := freeAddr(t)
	st := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "serve", "--listen", addr, "--events=false")
	for i := 1; i <= 2; i++ {
		hangup(t, ctx, st, i)
	}
	waitStderr(t, ctx, st, "sendtrace: SIGHUP: no --web.config.file to read again; serving on\n", 2)
	code, body, err := httpGet(ctx, "http://"+addr+"/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), "sendtrace_build_info") {
		t.Errorf("/metrics after SIGHUP: %d %v", code, err)
	}
	_, stderr := st.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}

// TestServeWebConfigSIGHUP changes the web configuration file under a
// running serve: a new password is in effect at once (the file is read
// on every request), and SIGHUP says so; a broken file is reported on
// SIGHUP and fails scrapes (500) until it is fixed, and serve goes on.
func TestServeWebConfigSIGHUP(t *testing.T) {
	ctx := fleetContext(t)
	dir := t.TempDir()
	webYML := filepath.Join(dir, "web.yml")
	users := func(pass string) string {
		return "basic_auth_users:\n  scraper: " + bcryptHash(t, pass) + "\n"
	}
	writeFileAtomic(t, webYML, users("first"))
	st := testutil.StartSendtrace(t, ctx, sendtraceBin, tracerReady, "serve", "--listen", "127.0.0.1:0", "--events=false", "--web.config.file", webYML)
	addr := readyListen(t, st.ReadyFile)
	waitStderr(t, ctx, st, "basic auth without TLS: passwords cross the network in the clear", 1)
	get := func(pass string) int {
		code, _, _, err := scrape(ctx, http.DefaultClient, "http://"+addr+"/metrics", "scraper", pass)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if c := get("first"); c != http.StatusOK {
		t.Fatalf("first password: %d, want 200", c)
	}

	writeFileAtomic(t, webYML, users("second"))
	hangup(t, ctx, st, 1)
	waitStderr(t, ctx, st, "sendtrace: SIGHUP: --web.config.file "+webYML+" is valid (plain HTTP, basic auth) and in effect", 1)
	if a, b := get("first"), get("second"); a != http.StatusUnauthorized || b != http.StatusOK {
		t.Errorf("after the change: first password %d (want 401), second %d (want 200)", a, b)
	}

	writeFileAtomic(t, webYML, "basic_auth_users: [\n")
	hangup(t, ctx, st, 2)
	waitStderr(t, ctx, st, "every scrape fails until the file is fixed", 1)
	if c := get("second"); c != http.StatusInternalServerError {
		t.Errorf("broken file: %d, want 500", c)
	}

	writeFileAtomic(t, webYML, users("second"))
	hangup(t, ctx, st, 3)
	waitStderr(t, ctx, st, "is valid (plain HTTP, basic auth) and in effect", 2)
	if c := get("second"); c != http.StatusOK {
		t.Errorf("fixed file: %d, want 200", c)
	}
	_, stderr := st.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}

// TestServeSIGHUPWithBTFFile: where the kernel's BTF is hidden, --btf
// runs serve again in a mount namespace of its own, under the first
// process. SIGHUP to that first process, the one a supervisor knows,
// reaches serve, which goes on; before, the first process died of it and
// took serve along.
func TestServeSIGHUPWithBTFFile(t *testing.T) {
	ctx := fleetContext(t)
	dir := t.TempDir()
	vmlinux, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err != nil {
		t.Fatalf("this test hides the kernel's BTF and gives a copy with --btf: %v", err)
	}
	copyPath, empty := filepath.Join(dir, "vmlinux"), filepath.Join(dir, "empty")
	if err := os.WriteFile(copyPath, vmlinux, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	addr, ready := freeAddr(t), filepath.Join(dir, "ready")
	script := fmt.Sprintf(`set -e
mount --bind %q /sys/kernel/btf/vmlinux
exec %q serve --listen %q --ready-file %q --events=false --btf %q`, empty, sendtraceBin, addr, ready, copyPath)
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
	var stderr testutil.LockedBuffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	wctx, cancel := context.WithTimeout(ctx, tracerReady)
	defer cancel()
	if err := testutil.WaitFile(wctx, ready); err != nil {
		t.Fatalf("serve --btf not ready: %v\n%s", err, stderr.Bytes())
	}
	pid := cmd.Process.Pid
	// Each thread lists the children it started.
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var children []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		children = append(children, strings.Fields(string(b))...)
	}
	if len(children) != 1 {
		t.Fatalf("serve --btf (pid %d) has children %q, want the one it runs in its mount namespace", pid, children)
	}
	t.Logf("serve --btf: pid %d runs serve as pid %s", pid, children[0])
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	defer hcancel()
	if err := testutil.Poll(hctx, 20*time.Millisecond, func() (bool, error) {
		select {
		case err := <-done:
			done <- err
			return false, fmt.Errorf("serve --btf exited on SIGHUP: %v", err)
		default:
		}
		return strings.Contains(string(stderr.Bytes()), "sendtrace: SIGHUP: "), nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, stderr.Bytes())
	}
	if code, _, err := httpGet(ctx, "http://"+addr+"/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz after SIGHUP: %d %v", code, err)
	}
	// Stopped as a terminal or systemd stops it: the whole group.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("serve --btf after SIGTERM: %v", err)
	}
	done <- nil
	t.Logf("serve --btf stderr:\n%s", stderr.Bytes())
}

// lastScrapeError is the last scrape error of Prometheus's one target.
func (p *prometheus) lastScrapeError(t *testing.T, ctx context.Context) string {
	t.Helper()
	code, body, err := httpGet(ctx, p.api+"/api/v1/targets?state=active")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/api/v1/targets: %d %v", code, err)
	}
	var r struct {
		Data struct {
			ActiveTargets []struct {
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || len(r.Data.ActiveTargets) != 1 {
		t.Fatalf("/api/v1/targets: %v, want one target: %s", err, body)
	}
	return r.Data.ActiveTargets[0].LastError
}
