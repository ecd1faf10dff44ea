package loader

import (
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"
)

// events.Kind and events.Layer are the C enums in Go; bpf2go generates
// the C side's values, and this test holds the two together.
func TestEnumsMatchC(t *testing.T) {
	kinds := map[sendtraceEventKind]events.Kind{
		sendtraceEventKindKIND_SEND_ERROR:    events.KindSendError,
		sendtraceEventKindKIND_RETRANSMIT:    events.KindRetransmit,
		sendtraceEventKindKIND_ERROR_REPORT:  events.KindErrorReport,
		sendtraceEventKindKIND_RECEIVE_RESET: events.KindReceiveReset,
		sendtraceEventKindKIND_SEND_RESET:    events.KindSendReset,
		sendtraceEventKindKIND_STATE_CHANGE:  events.KindStateChange,
		sendtraceEventKindKIND_DROP:          events.KindDrop,
	}
	for c, g := range kinds {
		if events.Kind(c) != g {
			t.Errorf("C kind %d is Go kind %s (%d)", c, g, g)
		}
	}
	if n := len(events.Kinds()) - 1; n != len(kinds) {
		t.Errorf("Go has %d event kinds, C has %d", n, len(kinds))
	}
	layers := map[sendtraceEventLayer]events.Layer{
		sendtraceEventLayerLAYER_STACK:   events.LayerStack,
		sendtraceEventLayerLAYER_SYSCALL: events.LayerSyscall,
		sendtraceEventLayerLAYER_BOTH:    events.LayerBoth,
	}
	for c, g := range layers {
		if events.Layer(c) != g {
			t.Errorf("C layer %d is Go layer %s (%d)", c, g, g)
		}
	}
	retrans := map[sendtraceRetransKind]events.RetransKind{
		sendtraceRetransKindRETRANS_RTO:      events.RetransRTO,
		sendtraceRetransKindRETRANS_FAST:     events.RetransFast,
		sendtraceRetransKindRETRANS_TLP:      events.RetransTLP,
		sendtraceRetransKindRETRANS_SYN:      events.RetransSYN,
		sendtraceRetransKindRETRANS_SYNACK:   events.RetransSYNACK,
		sendtraceRetransKindRETRANS_UNTRACED: events.RetransUntraced,
	}
	for c, g := range retrans {
		if events.RetransKind(c) != g {
			t.Errorf("C retransmit kind %d is Go kind %s (%d)", c, g, g)
		}
	}
	dirs := map[sendtraceDropDir]events.DropDir{
		sendtraceDropDirDROP_OUT: events.DropOut,
		sendtraceDropDirDROP_IN:  events.DropIn,
	}
	for c, g := range dirs {
		if events.DropDir(c) != g {
			t.Errorf("C drop direction %d is Go %s (%d)", c, g, g)
		}
	}
}
