// Package grafana_test checks the shipped Grafana dashboard: valid JSON
// Grafana imports as is, every query valid PromQL (promtool) naming only
// metrics serve exports, and the panels an operator needs.
package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/metrics"
)

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

type dashboard struct {
	Title         string  `json:"title"`
	UID           string  `json:"uid"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func load(t *testing.T) (*dashboard, []byte) {
	t.Helper()
	b, err := os.ReadFile("sendtrace-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("sendtrace-dashboard.json is not valid JSON: %v", err)
	}
	return &d, b
}

// names are the whole identifiers of a query that are sendtrace metrics
// (a recorded name such as a:sendtrace_x:rate5m is not one).
func names(q string) []string {
	var out []string
	for _, id := range regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`).FindAllString(q, -1) {
		if strings.HasPrefix(id, "sendtrace_") {
			out = append(out, id)
		}
	}
	return out
}

// TestDashboard: the JSON Grafana imports as it is, with a Prometheus
// data source chosen on import, and panels laid out on its 24 columns.
func TestDashboard(t *testing.T) {
	d, _ := load(t)
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 {
		t.Fatalf("dashboard lacks title, uid, schemaVersion or panels: %q %q %d %d", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}
	var ds bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus" {
			ds = true
		}
	}
	if !ds {
		t.Error("no datasource variable of type prometheus: the dashboard would need editing to import")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W <= 0 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source is not the dashboard's ${datasource}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Expr == "" {
				t.Errorf("panel %q: a query without refId or expr", p.Title)
			}
		}
	}
}

// TestDashboardQueries: every query names only metrics serve exports, is
// valid PromQL (promtool check rules, with Grafana's variables filled
// in), and the panels cover what an operator needs.
func TestDashboardQueries(t *testing.T) {
	d, raw := load(t)
	exported := metrics.Names()
	for _, q := range names(string(raw)) {
		if !exported[q] {
			t.Errorf("the dashboard queries %s, which serve does not export", q)
		}
	}
	fill := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$instance", ".*", "$workload", ".*")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	var all []string
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			all = append(all, q.Expr)
			e, _ := json.Marshal(fill.Replace(q.Expr)) // a JSON string is a YAML string
			fmt.Fprintf(&rules, "      - record: dashboard:%s:%s\n        expr: %s\n", regexp.MustCompile(`\W+`).ReplaceAllString(strings.ToLower(p.Title), "_"), q.RefID, e)
		}
	}
	f := filepath.Join(t.TempDir(), "queries.yml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatal("promtool is not installed: apt-get install prometheus (scripts/deps.sh)")
	}
	if out, err := exec.Command("promtool", "check", "rules", f).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, out, rules.String())
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{
		"by (workload, errno) (increase(sendtrace_send_failures_total",
		"by (kind) (rate(sendtrace_retransmitted_segments_total",
		"by (direction) (rate(sendtrace_resets_total",
		"by (reason) (rate(sendtrace_drops_total",
		"sendtrace_diagnoses_total",
		"sendtrace_uncounted_total",
		"sendtrace_totals_read_errors_total",
		"sendtrace_owners_unresolved_total",
		"sendtrace_events_lost_total",
		"sendtrace_layer_degraded",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("no panel queries %s", want)
		}
	}
}
