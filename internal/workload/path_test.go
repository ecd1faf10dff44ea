package workload

import (
	"strings"
	"testing"
)

func TestFromPath(t *testing.T) {
	id := strings.Repeat("3f2a9c1b7e44", 5) + "abcd"
	for _, c := range []struct{ path, want string }{
		{"/system.slice/nginx.service", "systemd/nginx.service"},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service", "systemd/foo.service"},
		{"/system.slice/docker-" + id + ".scope", "docker/3f2a9c1b7e44"},
		{"/docker/" + id, "docker/3f2a9c1b7e44"},
		{"/machine.slice/libpod-" + id + ".scope", "podman/3f2a9c1b7e44"},
		{"/machine.slice/libpod-" + id + ".scope/container", ""},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f9d_5c7e.slice/cri-containerd-" + id + ".scope", "containerd/3f2a9c1b7e44"},
		{"/kubepods.slice/kubepods-pod1f9d_5c7e.slice/crio-" + id + ".scope", "crio/3f2a9c1b7e44"},
		{"/kubepods/burstable/pod1f9d5c7e-0000-4a6b-9c2d-aabbccddeeff/" + id, "container/3f2a9c1b7e44"},
		{"/kubepods/pod1f9d5c7e-0000-4a6b-9c2d-aabbccddeeff/" + id, "container/3f2a9c1b7e44"},
		{"/user.slice/user-0.slice/session-3.scope", ""},
		{"/", ""},
		{"/system.slice/docker-123.scope", ""},
	} {
		got := FromPath(c.path).String()
		if got != c.want {
			t.Errorf("FromPath(%s) = %q, want %q", c.path, got, c.want)
		}
	}
}

func TestWithPod(t *testing.T) {
	id := strings.Repeat("ab", 32)
	w := container("containerd", id)
	for _, a := range []map[string]string{
		{"io.kubernetes.cri.sandbox-name": "cart-7d9", "io.kubernetes.cri.sandbox-namespace": "shop", "io.kubernetes.cri.container-name": "cart"},
		{"io.kubernetes.pod.name": "cart-7d9", "io.kubernetes.pod.namespace": "shop", "io.kubernetes.container.name": "cart"},
	} {
		got := withPod(w, a)
		if got.String() != "k8s/shop/cart-7d9/cart" || got.ID != id {
			t.Errorf("withPod(%v) = %+v", a, got)
		}
	}
	if got := withPod(w, nil); got != w {
		t.Errorf("no annotations: %+v", got)
	}
}
