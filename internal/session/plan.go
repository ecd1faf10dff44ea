package session

// Layers, in the order `sendtrace check` prints them.
const (
	LayerSendReturn  = "send-return"
	LayerSyscallExit = "syscall-exit"
	LayerRetransmit  = "retransmit"
	LayerDrop        = "drop"
	LayerErrorReport = "error-report"
	LayerReset       = "reset"
	LayerSockState   = "socket-state"
	LayerOwnerSeed   = "owner-seed"
	LayerOwnerStore  = "owner-store"
	LayerOpenCounter = "open-counters"
)

// Hook is the planner's choice for one layer.
type Hook struct {
	Layer string `json:"layer"`
	// Hook is the hook in use, or "" when the layer is degraded or off.
	Hook   string `json:"hook"`
	Active bool   `json:"active"`
	// Off marks a layer the session chose not to hook (--no-syscall-layer),
	// as opposed to one this kernel cannot serve.
	Off bool `json:"off,omitempty"`
	// Why says why Hook was chosen, or why the layer is degraded or off.
	Why string `json:"why,omitempty"`
	// Tried lists each candidate that was refused, with the kernel's
	// reason. Recordings do not keep it.
	Tried []string `json:"tried,omitempty"`
}

// Status is how a layer is served.
type Status string

const (
	StatusOn       Status = "ok"
	StatusOff      Status = "off"
	StatusDegraded Status = "degraded"
)

// Status says whether the layer is hooked, off by choice, or degraded
// because no candidate works on this kernel.
func (h Hook) Status() Status {
	switch {
	case h.Off:
		return StatusOff
	case !h.Active:
		return StatusDegraded
	}
	return StatusOn
}

// Shown is the hook's name, or "off" or "degraded": what a person, the
// ready file and `check --expect` compare.
func (h Hook) Shown() string {
	if s := h.Status(); s != StatusOn {
		return string(s)
	}
	return h.Hook
}

// Plan is the hook chosen for every layer.
type Plan []Hook

// Layer returns the plan's entry for a layer.
func (p Plan) Layer(name string) (Hook, bool) {
	for _, h := range p {
		if h.Layer == name {
			return h, true
		}
	}
	return Hook{}, false
}

// ForRecording drops what a recording does not keep (the refused
// candidates), and never returns nil, so headers hold "hooks":[].
func (p Plan) ForRecording() Plan {
	out := make(Plan, len(p))
	for i, h := range p {
		h.Tried = nil
		out[i] = h
	}
	return out
}
