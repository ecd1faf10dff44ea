package fleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// queryAll runs an instant query and returns its series' labels.
func (p *prometheus) queryAll(ctx context.Context, q string) ([]map[string]string, error) {
	code, body, err := httpGet(ctx, p.api+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("query %s: %d %s", q, code, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	var out []map[string]string
	for _, s := range r.Data.Result {
		out = append(out, s.Metric)
	}
	return out, nil
}

// TestServeDashboardQueries: a real Prometheus scrapes a real `sendtrace
// serve` while one process of a unit fails sends; every query of the
// shipped Grafana dashboard (deploy/grafana) runs without error, with
// its variables as Grafana fills them for one node and one workload, the
// failures panel shows the unit's errno, and the health panels have the
// agent's series: one sendtrace_layer_degraded per layer of its plan.
func TestServeDashboardQueries(t *testing.T) {
	ctx := fleetContext(t)
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "sendtrace-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	lab := newUDPLab(t, ctx)
	unit := "sendtrace-dash-" + randomHex(t, 8) + ".service"
	unitDir, _ := makeCgroup(t, "system.slice/"+unit)
	label := "systemd/" + unit

	srv := startServe(t, ctx, "--events=false", "--dst="+lab.Link.V4Net.String())
	prom := startPrometheus(t, ctx, srv.addr)
	a := lab.client(t, ctx, 3)
	moveInto(t, unitDir, a.PID())
	if err := a.Release("start"); err != nil {
		t.Fatal(err)
	}
	if n := len(failedSends(t, ctx, a)); n != 3 {
		t.Fatalf("lab: the actor saw %d failed sends, want 3", n)
	}
	prom.waitQuery(t, ctx, fmt.Sprintf(`sendtrace_send_failures_total{workload=%q,errno="EMSGSIZE"}`, label), 3)
	// Two samples of the counter at 3 at least, for the range queries.
	prom.waitQuery(t, ctx, fmt.Sprintf(`count_over_time(sendtrace_send_failures_total{workload=%q}[1m]) > bool 1`, label), 1)

	fill := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h",
		"$instance", strings.ReplaceAll(srv.addr, ".", `\\.`), "$workload", strings.ReplaceAll(label, ".", `\\.`))
	results := map[string][]map[string]string{}
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			got, err := prom.queryAll(ctx, fill.Replace(q.Expr))
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			results[p.Title] = append(results[p.Title], got...)
			t.Logf("panel %q: %d series", p.Title, len(got))
		}
	}
	var errnos []string
	for _, m := range results["Failed sends by workload and errno"] {
		if m["workload"] == label {
			errnos = append(errnos, m["errno"])
		}
	}
	if strings.Join(errnos, ",") != "EMSGSIZE" {
		t.Errorf("failed sends panel: %s has errnos %v, want EMSGSIZE: %v", label, errnos, results["Failed sends by workload and errno"])
	}
	layers, err := prom.queryAll(ctx, `sendtrace_layer_degraded`)
	if err != nil || len(layers) < 5 {
		t.Errorf("sendtrace_layer_degraded: %v %v, want a series for each layer of the plan", layers, err)
	}
	for _, m := range layers {
		if m["layer"] == "" || m["hook"] == "" {
			t.Errorf("sendtrace_layer_degraded without layer or hook: %v", m)
		}
	}
	t.Logf("sendtrace_layer_degraded: %v", layers)
	for _, p := range dash.Panels {
		if p.Title == "Nodes whose counts are not exact" {
			if v, ok, err := prom.query(ctx, fill.Replace(p.Targets[0].Expr)); err != nil || !ok || v != 0 {
				t.Errorf("%s: %v %v %v, want 0 on a node that missed no count", p.Title, v, ok, err)
			}
		}
	}
	if len(results["Agents"]) != 2 {
		t.Errorf("Agents panel: %v, want the version and the agent's age", results["Agents"])
	}
	_, stderr := srv.Stop(t, tracerStop)
	t.Logf("sendtrace serve stderr:\n%s", stderr)
}
