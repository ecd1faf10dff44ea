// Package kubernetes_test decodes the shipped manifests strictly into the
// Kubernetes API types (an unknown or misspelt field is an error) and
// checks the DaemonSet asks for no more privilege than sendtrace needs.
package kubernetes_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// strict decodes one YAML manifest into v as the API server would in
// strict mode: an unknown field, a field in the wrong case or a
// duplicate key is an error (encoding/json would match "hostPid" to
// hostPID).
func strict(b []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(b)
	if err != nil {
		return err
	}
	errs, err := kjson.UnmarshalStrict(j, v, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

func decodeStrict(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := strict(b, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	// The check itself must be able to fail.
	for _, bad := range []string{"hostPid: true", "hostPIDs: true"} {
		var ds appsv1.DaemonSet
		err := strict([]byte("apiVersion: apps/v1\nkind: DaemonSet\nspec:\n  template:\n    spec:\n      "+bad+"\n"), &ds)
		if err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestDaemonSet(t *testing.T) {
	var ds appsv1.DaemonSet
	decodeStrict(t, "daemonset.yaml", &ds)
	if ds.APIVersion != "apps/v1" || ds.Kind != "DaemonSet" || ds.Namespace != "sendtrace" {
		t.Errorf("apiVersion %q kind %q namespace %q", ds.APIVersion, ds.Kind, ds.Namespace)
	}
	spec := ds.Spec.Template.Spec
	if !spec.HostPID {
		t.Error("hostPID: the kernel reports host pids; /proc must be the host's to name their workloads")
	}
	if spec.HostNetwork || spec.HostIPC {
		t.Error("hostNetwork and hostIPC are not needed")
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("no securityContext with capabilities")
	}
	if sc.Privileged == nil || *sc.Privileged {
		t.Error("privileged must be set to false")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem must be true")
	}
	var add []string
	for _, c := range sc.Capabilities.Add {
		add = append(add, string(c))
	}
	slices.Sort(add)
	if strings.Join(add, ",") != "BPF,PERFMON" {
		t.Errorf("capabilities add %v, want exactly BPF and PERFMON", add)
	}
	if len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("capabilities drop %v, want ALL", sc.Capabilities.Drop)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
		if m.Name == "flight" || m.Name == "tmp" {
			continue // the agent's own files, checked below
		}
		if !m.ReadOnly {
			t.Errorf("volume %s is mounted read-write", m.Name)
		}
		if !strings.HasPrefix(m.MountPath, "/host/") {
			t.Errorf("volume %s at %s: host paths go under --host-root=/host", m.Name, m.MountPath)
		}
	}
	for _, v := range spec.Volumes {
		hp := v.HostPath
		if hp == nil {
			continue
		}
		m, ok := mounts[v.Name]
		if !ok {
			t.Errorf("host path %s is not mounted", hp.Path)
			continue
		}
		if v.Name == "flight" {
			if m.ReadOnly || m.MountPath != hp.Path || !slices.Contains(c.Args, "--flight-dir="+m.MountPath) || !slices.Contains(c.Args, "--flight-max-size=256MiB") {
				t.Errorf("flight recording: host path %s mounted at %s (read-only %v), args %v: want it written at the --flight-dir, with a --flight-max-size", hp.Path, m.MountPath, m.ReadOnly, c.Args)
			}
			continue
		}
		if m.MountPath != "/host"+hp.Path {
			t.Errorf("host path %s mounted at %s, want /host%s", hp.Path, m.MountPath, hp.Path)
		}
		if strings.HasSuffix(hp.Path, ".sock") || hp.Path == "/run" || hp.Path == "/run/containerd" || hp.Path == "/" {
			t.Errorf("host path %s would expose a container runtime's socket", hp.Path)
		}
	}
	if _, ok := mounts["flight"]; !ok {
		t.Error("no flight recording volume")
	}
	for _, v := range spec.Volumes {
		if v.Name == "tmp" && (v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil) {
			t.Error("/tmp (where report --flight cuts its window) must be an emptyDir with a size limit")
		}
	}
	// A window of the flight recording names the node's processes and
	// peers: as shipped, with no web configuration, nobody may fetch it.
	if slices.Contains(c.Args, "--serve-recordings") {
		t.Errorf("args %v: /recording must be off as shipped, on only with the web configuration", c.Args)
	}
	if !slices.Contains(c.Args, "serve") || !slices.Contains(c.Args, "--host-root=/host") {
		t.Errorf("args %v: want serve with --host-root=/host", c.Args)
	}
	var metricsPort int32
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	if metricsPort != 9464 || !slices.Contains(c.Args, "--listen=0.0.0.0:9464") {
		t.Errorf("metrics port %d, args %v: want 9464 served on every pod address", metricsPort, c.Args)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/healthz" {
		t.Error("readiness probe should GET /healthz")
	}
	if sel := ds.Spec.Selector; sel == nil || sel.MatchLabels["app.kubernetes.io/name"] != ds.Spec.Template.Labels["app.kubernetes.io/name"] {
		t.Error("selector does not match the template's labels")
	}
}

func TestService(t *testing.T) {
	var svc corev1.Service
	decodeStrict(t, "service.yaml", &svc)
	var ds appsv1.DaemonSet
	decodeStrict(t, "daemonset.yaml", &ds)
	a := svc.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != "9464" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v", a)
	}
	for k, v := range svc.Spec.Selector {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("service selector %s=%s does not select the DaemonSet's pods", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "metrics" || svc.Spec.Ports[0].TargetPort.String() != "metrics" {
		t.Errorf("ports %+v: want one named metrics targeting the container's metrics port", svc.Spec.Ports)
	}
}

func TestNamespace(t *testing.T) {
	var ns corev1.Namespace
	decodeStrict(t, "namespace.yaml", &ns)
	if ns.Name != "sendtrace" {
		t.Errorf("namespace %q", ns.Name)
	}
}

// The ServiceMonitor's CRD types are not in k8s.io/api: it is checked as
// unstructured YAML for the keys the Prometheus Operator needs.
func TestServiceMonitor(t *testing.T) {
	b, err := os.ReadFile("servicemonitor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sm map[string]any
	if err := yaml.UnmarshalStrict(b, &sm); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	decodeStrict(t, "service.yaml", &svc)
	get := func(path ...string) any {
		var v any = sm
		for _, p := range path {
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[p]
		}
		return v
	}
	if get("apiVersion") != "monitoring.coreos.com/v1" || get("kind") != "ServiceMonitor" {
		t.Errorf("apiVersion %v kind %v", get("apiVersion"), get("kind"))
	}
	labels, _ := get("spec", "selector", "matchLabels").(map[string]any)
	if len(labels) == 0 {
		t.Fatal("spec.selector.matchLabels is required")
	}
	for k, v := range labels {
		if svc.Labels[k] != v {
			t.Errorf("selector %s=%v does not select the Service (labels %v)", k, v, svc.Labels)
		}
	}
	eps, _ := get("spec", "endpoints").([]any)
	if len(eps) == 0 {
		t.Fatal("spec.endpoints is required")
	}
	for _, e := range eps {
		m, _ := e.(map[string]any)
		if m["port"] != svc.Spec.Ports[0].Name || m["path"] != "/metrics" {
			t.Errorf("endpoint %v: want port %s path /metrics", m, svc.Spec.Ports[0].Name)
		}
		for k := range m {
			if !slices.Contains([]string{"port", "path", "interval", "relabelings", "scrapeTimeout", "metricRelabelings"}, k) {
				t.Errorf("endpoint key %q is not one this check knows", k)
			}
		}
	}
}

// uncomment turns on the example lines a manifest carries commented out,
// with "#" in column 1 before the line's own indentation (prose comments
// are indented, or "# " at the top), and says how many it turned on.
func uncomment(t *testing.T, file string) ([]byte, int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	n := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "#   ") {
			lines[i] = " " + l[1:]
			n++
		}
	}
	return []byte(strings.Join(lines, "\n")), n
}

// TestWebConfigExamples turns on the commented TLS and basic auth lines of
// the DaemonSet, the Service and the ServiceMonitor, as their comments say
// to, and checks the result decodes strictly and fits together: the flag
// names a file in the Secret's mount, /recording is served behind it, and
// the ServiceMonitor scrapes over TLS with basic auth.
func TestWebConfigExamples(t *testing.T) {
	b, n := uncomment(t, "daemonset.yaml")
	if n != 9 {
		t.Fatalf("daemonset.yaml: %d commented example lines, want 9 (flag, mount, volume, --serve-recordings)", n)
	}
	var ds appsv1.DaemonSet
	if err := strict(b, &ds); err != nil {
		t.Fatalf("daemonset.yaml with the TLS lines on: %v", err)
	}
	c := ds.Spec.Template.Spec.Containers[0]
	var file string
	for _, a := range c.Args {
		if f, ok := strings.CutPrefix(a, "--web.config.file="); ok {
			file = f
		}
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		if m.Name == "web-config" {
			mounted = m.ReadOnly && strings.HasPrefix(file, m.MountPath+"/")
		}
	}
	var secret string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.Name == "web-config" && v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if file == "" || !mounted || secret != "sendtrace-web-config" {
		t.Errorf("--web.config.file=%q, mounted read-only from the web-config volume: %v, its Secret %q", file, mounted, secret)
	}
	if !slices.Contains(c.Args, "--serve-recordings") || !slices.Contains(c.Args, "--flight-dir=/var/lib/sendtrace/flight") {
		t.Errorf("with the example lines on, serve must serve /recording of its flight recording behind the web configuration: args %v", c.Args)
	}

	b, n = uncomment(t, "service.yaml")
	var svc corev1.Service
	if err := strict(b, &svc); err != nil || n != 1 || svc.Annotations["prometheus.io/scheme"] != "https" {
		t.Errorf("service.yaml with the TLS line on (%d lines): %v, annotations %v", n, err, svc.Annotations)
	}

	b, n = uncomment(t, "servicemonitor.yaml")
	var sm struct {
		Spec struct {
			Endpoints []struct {
				Port, Path, Interval, Scheme string
				Relabelings                  []any
				TLSConfig                    struct {
					ServerName string `json:"serverName"`
					CA         struct {
						Secret struct{ Name, Key string }
					}
				} `json:"tlsConfig"`
				BasicAuth struct {
					Username, Password struct{ Name, Key string }
				} `json:"basicAuth"`
			}
		}
	}
	j, err := yaml.YAMLToJSONStrict(b)
	if err == nil {
		// Unknown fields are left to the Operator; the keys above must
		// be where it reads them.
		err = json.Unmarshal(j, &sm)
	}
	if err != nil || n != 14 || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("servicemonitor.yaml with the TLS lines on (%d lines, want 14): %v", n, err)
	}
	e := sm.Spec.Endpoints[0]
	if e.Scheme != "https" || e.TLSConfig.CA.Secret.Name == "" || e.TLSConfig.CA.Secret.Key == "" || e.TLSConfig.ServerName == "" ||
		e.BasicAuth.Username.Name == "" || e.BasicAuth.Password.Key == "" {
		t.Errorf("servicemonitor.yaml endpoint with the TLS lines on: %+v", e)
	}
}

// TestDaemonSetMountsRuntimeState: every runtime's state and bundle file
// in internal/workload's fixtures (containerd, CRI-O with runc and with
// crun, Docker, k3s, as each writes them on a host) lies under a host
// path the DaemonSet mounts, so --host-root sees it.
func TestDaemonSetMountsRuntimeState(t *testing.T) {
	var ds appsv1.DaemonSet
	decodeStrict(t, "daemonset.yaml", &ds)
	var mounted []string
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if v.HostPath != nil {
			mounted = append(mounted, v.HostPath.Path)
		}
	}
	root := "../../internal/workload/testdata/hostroot"
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		host := strings.TrimPrefix(p, root)
		if !slices.ContainsFunc(mounted, func(m string) bool { return strings.HasPrefix(host, m+"/") }) {
			t.Errorf("%s is under no host path the DaemonSet mounts (%v)", host, mounted)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("%d runtime state files in %s: %v", n, root, err)
	}
}

// TestDaemonSetMountsTracefs: the DaemonSet gives serve, which holds no
// CAP_SYS_ADMIN to mount tracefs, the node's /sys/kernel/tracing below its
// --host-root, where serve reads the cgroup_mkdir tracepoint's id
// (TestServeTransientUnits/daemonset runs serve so).
func TestDaemonSetMountsTracefs(t *testing.T) {
	var ds appsv1.DaemonSet
	decodeStrict(t, "daemonset.yaml", &ds)
	pod := ds.Spec.Template.Spec
	hostRoot := ""
	for _, a := range pod.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--host-root="); ok {
			hostRoot = v
		}
	}
	if hostRoot == "" {
		t.Fatalf("the DaemonSet's serve has no --host-root: %v", pod.Containers[0].Args)
	}
	volume := ""
	for _, v := range pod.Volumes {
		if v.HostPath != nil && v.HostPath.Path == "/sys/kernel/tracing" {
			volume = v.Name
		}
	}
	if volume == "" {
		t.Fatal("the DaemonSet mounts no hostPath /sys/kernel/tracing")
	}
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.Name == volume {
			if m.MountPath != hostRoot+"/sys/kernel/tracing" || !m.ReadOnly {
				t.Errorf("tracefs is mounted at %s (read-only %v), want %s/sys/kernel/tracing read-only", m.MountPath, m.ReadOnly, hostRoot)
			}
			return
		}
	}
	t.Errorf("volume %s is not mounted in the container", volume)
}
