package render

import (
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// A container's or unit's workload ends the line; a process is already
// named in the PROCESS column.
func TestTextWorkload(t *testing.T) {
	pod := sendError(events.EPIPE, "198.18.0.2:443", "cart", 4242, 100)
	pod.Workload = (&events.Workload{Kind: events.WorkloadKubernetes, Pod: "cart-7d9", Namespace: "shop", Container: "cart"}).Finish()
	proc := sendError(events.EPIPE, "198.18.0.2:443", "curl", 4243, 100)
	proc.Workload = (&events.Workload{Kind: events.WorkloadProcess, Name: "curl"}).Finish()
	if line := string(AppendTextLine(nil, &pod, nil)); !strings.HasSuffix(line, " workload=k8s/shop/cart-7d9/cart") {
		t.Errorf("pod's line does not end with its workload: %q", line)
	}
	if line := string(AppendTextLine(nil, &proc, nil)); strings.Contains(line, "workload=") {
		t.Errorf("a process's line repeats its name: %q", line)
	}
}
