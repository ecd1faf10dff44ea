package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sendtrace/sendtrace/internal/netlab"
	"github.com/sendtrace/sendtrace/internal/testutil"
)

// freeAddr returns a loopback address no one listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func httpGet(ctx context.Context, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// server is one running `sendtrace serve`.
type server struct {
	*testutil.Sendtrace
	addr string
}

func startServe(t *testing.T, ctx context.Context, args ...string) *server {
	t.Helper()
	return startServeBin(t, ctx, sendtraceBin, args...)
}

// startServeBin is startServe with the sendtrace binary, or a wrapper
// that runs it, given.
func startServeBin(t *testing.T, ctx context.Context, bin string, args ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	st := testutil.StartSendtrace(t, ctx, bin, tracerReady, append([]string{"serve", "--listen", addr}, args...)...)
	s := &server{Sendtrace: st, addr: addr}
	code, body, err := httpGet(ctx, "http://"+addr+"/healthz")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/healthz once ready: %d %s %v", code, body, err)
	}
	return s
}

func (s *server) metrics(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	code, body, err := httpGet(ctx, "http://"+s.addr+"/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	return body
}

// prometheus is a real Prometheus scraping one target every second.
type prometheus struct {
	api string
}

func startPrometheus(t *testing.T, ctx context.Context, target string) *prometheus {
	t.Helper()
	return startPrometheusJob(t, ctx, target, "")
}

// startPrometheusJob is startPrometheus with more settings for the scrape
// job (scheme, basic_auth, tls_config), indented as a job's keys, and the
// rule files it evaluates every second.
func startPrometheusJob(t *testing.T, ctx context.Context, target, job string, rules ...string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: apt-get install prometheus (scripts/deps.sh)")
	}
	dir := t.TempDir()
	ruleFiles := ""
	if len(rules) > 0 {
		ruleFiles = "rule_files:\n"
		for _, r := range rules {
			ruleFiles += fmt.Sprintf("  - %q\n", r)
		}
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
%sscrape_configs:
  - job_name: sendtrace
    scrape_interval: 1s
    scrape_timeout: 1s
%s    static_configs:
      - targets: ['%s']
`, ruleFiles, job, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	var out testutil.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.Bytes())
		}
	})
	p := &prometheus{api: "http://" + addr}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := testutil.Poll(wctx, 100*time.Millisecond, func() (bool, error) {
		code, _, err := httpGet(wctx, p.api+"/-/ready")
		return err == nil && code == http.StatusOK, nil
	}); err != nil {
		t.Fatalf("prometheus not ready: %v\n%s", err, out.Bytes())
	}
	return p
}

// query runs an instant query whose result is one number (or none).
func (p *prometheus) query(ctx context.Context, q string) (float64, bool, error) {
	code, body, err := httpGet(ctx, p.api+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return 0, false, err
	}
	if code != http.StatusOK {
		return 0, false, fmt.Errorf("query %s: %d %s", q, code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, false, err
	}
	if len(r.Data.Result) == 0 {
		return 0, false, nil
	}
	if len(r.Data.Result) > 1 {
		return 0, false, fmt.Errorf("query %s: %d series, want one: %s", q, len(r.Data.Result), body)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, true, err
}

// waitQuery polls a query until Prometheus returns want, and fails with
// the last answer if it never does.
func (p *prometheus) waitQuery(t *testing.T, ctx context.Context, q string, want float64) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	err := testutil.Poll(wctx, 250*time.Millisecond, func() (bool, error) {
		v, ok, err := p.query(wctx, q)
		last = fmt.Sprintf("%v %v %v", v, ok, err)
		return ok && v == want, nil
	})
	if err != nil {
		t.Errorf("prometheus: %s = %s, want %v", q, last, want)
		return
	}
	t.Logf("prometheus: %s = %v", q, want)
}

// TestServePrometheus makes real failed sends and real resets in
// processes in two workloads, has a real Prometheus scrape `sendtrace
// serve`, and checks its query API returns exactly what the processes
// saw; promtool checks the exposition.
func TestServePrometheus(t *testing.T) {
	ctx := fleetContext(t)
	lab := newUDPLab(t, ctx)
	resetDst := lab.ServerAddr(false, udpPort+1)
	rst := lab.Server.StartActor(t, actorBin, "server", "-mode", "reset", "-listen", resetDst.String())
	if _, err := rst.WaitPhase(ctx, "listening"); err != nil {
		t.Fatal(err)
	}
	unit := "sendtrace-serve-" + randomHex(t, 8) + ".service"
	docker := randomHex(t, 64)
	unitDir, _ := makeCgroup(t, "system.slice/"+unit)
	dockerDir, _ := makeCgroup(t, "system.slice/docker-"+docker+".scope")

	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String())
	prom := startPrometheus(t, ctx, srv.addr)

	// Three processes of the docker workload fail 4, 5 and 6 sends; one
	// process of the unit is reset by its peer and fails two sends.
	var dockerActors []*netlab.Actor
	for _, n := range []int{4, 5, 6} {
		a := lab.client(t, ctx, n)
		moveInto(t, dockerDir, a.PID())
		dockerActors = append(dockerActors, a)
	}
	reset := lab.Client.StartActor(t, actorBin, "client", "-to", resetDst.String(), "-await-error-before", "1", "-count", "2", "-size", "1000")
	if _, err := reset.WaitPhase(ctx, "start"); err != nil {
		t.Fatal(err)
	}
	moveInto(t, unitDir, reset.PID())
	for _, a := range append(dockerActors, reset) {
		if err := a.Release("start"); err != nil {
			t.Fatal(err)
		}
	}
	dockerFailed := 0
	for _, a := range dockerActors {
		dockerFailed += len(failedSends(t, ctx, a))
	}
	resetErrnos := map[string]int{}
	for _, s := range failedSends(t, ctx, reset) {
		resetErrnos[s.ErrnoName]++
	}
	if dockerFailed != 15 || resetErrnos["ECONNRESET"] != 1 || resetErrnos["EPIPE"] != 1 {
		t.Fatalf("lab: docker actors saw %d failed sends (want 15), the reset actor %v", dockerFailed, resetErrnos)
	}

	dockerLabel := "docker/" + docker[:12]
	unitLabel := "systemd/" + unit
	prom.waitQuery(t, ctx, fmt.Sprintf(`sum(sendtrace_send_failures_total{workload=%q,errno="EMSGSIZE"})`, dockerLabel), float64(dockerFailed))
	for errno, n := range resetErrnos {
		prom.waitQuery(t, ctx, fmt.Sprintf(`sendtrace_send_failures_total{workload=%q,errno=%q}`, unitLabel, errno), float64(n))
	}
	prom.waitQuery(t, ctx, fmt.Sprintf(`sendtrace_resets_total{workload=%q,direction="received"}`, unitLabel), 1)
	prom.waitQuery(t, ctx, `sendtrace_build_info`, 1)

	exposition := srv.metrics(t, ctx)
	check := exec.CommandContext(ctx, "promtool", "check", "metrics")
	check.Stdin = bytes.NewReader(exposition)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, exposition)
	}
	for _, line := range strings.Split(string(exposition), "\n") {
		if strings.Contains(line, dockerLabel) || strings.Contains(line, unitLabel) || strings.HasPrefix(line, "sendtrace_events_lost") || strings.HasPrefix(line, "sendtrace_build") {
			t.Logf("/metrics: %s", line)
		}
	}
	_, stderr := srv.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}
