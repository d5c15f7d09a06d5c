package webhook

import (
	"strconv"
	"testing"
	"time"
)

func TestReplayGuardForgets(t *testing.T) {
	var g replayGuard
	now := time.Unix(1_800_000_000, 0)
	for try := range 2 {
		if !g.admit("a", "PUT x", now) {
			t.Fatalf("try %d of the same message on the same route was refused", try+1)
		}
	}
	if g.admit("a", "PUT y", now.Add(replayWindow-time.Second)) {
		t.Fatal("the id was accepted for another route within the window")
	}
	// Past the window no signature with that timestamp verifies any more, so the
	// id may be forgotten.
	if !g.admit("a", "PUT y", now.Add(replayWindow)) {
		t.Fatal("an id was remembered past the window")
	}

	var full replayGuard
	for i := range maxRemembered + 10 {
		full.admit(strconv.Itoa(i), "GET", now)
	}
	if len(full.seen) > maxRemembered || len(full.order) > maxRemembered {
		t.Fatalf("%d ids remembered, the bound is %d", len(full.seen), maxRemembered)
	}
	if full.admit(strconv.Itoa(maxRemembered+9), "PUT", now) {
		t.Fatal("the newest id was forgotten before the oldest")
	}
}
