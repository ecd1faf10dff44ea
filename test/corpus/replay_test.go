package corpus_test

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sendtrace/sendtrace/internal/events"

	"github.com/sendtrace/sendtrace/test/corpus"
)

const testdata = "testdata"

// -update rewrites each label's answer with what the replay gives, for a
// rule change meant to change answers: its diff is the change's effect
// on the corpus, to be read before it is committed.
var update = flag.Bool("update", false, "rewrite the labels' answers from the replay")

// TestCorpusReplay replays every committed recording of the corpus
// through the diagnosis, as `sendtrace report` does, and fails when a
// case's answer (each diagnosis's rule and confidence) is not the one
// its label holds: every change of a rule is checked against every case.
// A rule change that is meant to change answers rewrites the labels with
// make diagnose-corpus, or from the committed recordings with
// go test ./test/corpus -run TestCorpusReplay -update, in the same commit.
func TestCorpusReplay(t *testing.T) {
	n := 0
	for _, c := range corpus.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			l, err := corpus.ReadLabel(testdata, c.Name)
			if err != nil {
				t.Fatalf("no label: %v (make diagnose-corpus records the corpus)", err)
			}
			if l.Cause != c.Cause {
				t.Errorf("label's cause %s, the table's %s", l.Cause, c.Cause)
			}
			ds, err := corpus.Diagnose(corpus.Recording(testdata, c.Name))
			if err != nil {
				t.Fatal(err)
			}
			got := corpus.Answer(ds)
			if *update && !slices.Equal(got, l.Answer) {
				t.Logf("answer %v, was %v", got, l.Answer)
				l.Answer = got
				if err := corpus.WriteLabel(testdata, l); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(got, l.Answer) {
				for _, d := range ds {
					t.Logf("%s", d.String())
				}
				t.Errorf("answer %v, the label says %v", got, l.Answer)
			}
			n++
		})
	}
	if n == 0 {
		t.Fatal("no case replayed")
	}
}

// TestCorpusReplayTwice: the same recording replayed twice gets the same
// answer, to the evidence's text.
func TestCorpusReplayTwice(t *testing.T) {
	for _, c := range corpus.Cases() {
		path := corpus.Recording(testdata, c.Name)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		a, err := corpus.Diagnose(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := corpus.Diagnose(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Errorf("%s: %d diagnoses, then %d", c.Name, len(a), len(b))
			continue
		}
		for i := range a {
			if a[i].String() != b[i].String() {
				t.Errorf("%s: replayed twice:\n%s\n%s", c.Name, a[i].String(), b[i].String())
			}
		}
	}
}

// TestScore: how a case's diagnoses score.
func TestScore(t *testing.T) {
	// Recordings of the corpus hold real diagnoses: score them against
	// causes they do not have.
	ds, err := corpus.Diagnose(corpus.Recording(testdata, "black-hole-remote-firewall_upload_actor_mid_v4"))
	if err != nil {
		t.Fatal(err)
	}
	bh, pm, ok := lookup(t, "black-hole-remote-firewall_upload_actor_mid_v4"), lookup(t, "pmtu-black-hole_upload_curl_mid_v4"), lookup(t, "healthy_upload_go_mid_v4")
	if v := corpus.Score(bh, ds); v.Class != corpus.Right || v.Rule != "black-hole" {
		t.Errorf("black hole scored %+v", v)
	}
	if v := corpus.Score(pm, ds); v.Class != corpus.Wrong {
		t.Errorf("black-hole for a PMTU black hole scored %+v", v)
	}
	if v := corpus.Score(ok, nil); v.Class != corpus.Right || v.Rule != corpus.None {
		t.Errorf("no diagnosis of a healthy transfer scored %+v", v)
	}
	if v := corpus.Score(bh, nil); v.Class != corpus.Unknown {
		t.Errorf("no diagnosis of a black hole scored %+v", v)
	}
	low := slices.Clone(ds)
	low[0].Confidence = "low"
	if v := corpus.Score(pm, low); v.Class != corpus.Unknown {
		t.Errorf("a low-confidence wrong name scored %+v", v)
	}
}

// TestCorpusSettings: a connection the kernel timed out is explained by
// the setting recorded for its namespace, the lab's tcp_retries2=3 (or
// tcp_syn_retries=2 for a connect), never a value guessed from the time
// it took. TCP_USER_TIMEOUT and keepalive end connections by other
// settings, and are left out.
func TestCorpusSettings(t *testing.T) {
	n := 0
	for _, c := range corpus.Cases() {
		if c.Cause == corpus.UserTimeout || c.Cause == corpus.KeepaliveExpiry {
			continue
		}
		ds, err := corpus.Diagnose(corpus.Recording(testdata, c.Name))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.Errno != events.ETIMEDOUT || d.Evidence.Setting == "" {
				continue
			}
			n++
			if !strings.HasPrefix(d.Evidence.Setting, "net.ipv4.tcp_retries2=3, as recorded for net:[") &&
				!strings.HasPrefix(d.Evidence.Setting, "net.ipv4.tcp_syn_retries=2, as recorded for net:[") {
				t.Errorf("%s: %s: setting %q, the lab set tcp_retries2=3 and tcp_syn_retries=2", c.Name, d.Rule, d.Evidence.Setting)
			}
		}
	}
	if n == 0 {
		t.Fatal("no timed-out connection in the corpus")
	}
	t.Logf("%d timed-out connections name the recorded setting", n)
}

func lookup(t *testing.T, name string) corpus.Case {
	t.Helper()
	c, err := corpus.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
