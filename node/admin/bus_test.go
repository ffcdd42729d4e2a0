package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/node"
)

// replayer is a node that publishes events, answering replays with err.
type replayer struct {
	fakeSource
	err              error
	gotSeq           uint64
	gotHeight, asked bool
}

func (r *replayer) ReplayEvents(_ context.Context, seq uint64, byHeight bool) (uint64, error) {
	r.gotSeq, r.gotHeight, r.asked = seq, byHeight, true
	return seq + 100, r.err
}

func TestBusReplayRoute(t *testing.T) {
	for _, tc := range []struct {
		query    string
		err      error
		code     int
		byHeight bool
	}{
		{"seq=42", nil, http.StatusOK, false},
		{"height=7", nil, http.StatusOK, true},
		{"", nil, http.StatusBadRequest, false},
		{"seq=1&height=2", nil, http.StatusBadRequest, false},
		{"seq=-1", nil, http.StatusBadRequest, false},
		{"height=x", nil, http.StatusBadRequest, false},
		{"seq=5", amqp.ErrNotConnected, http.StatusServiceUnavailable, false},
		{"seq=5", node.ErrNoPublisher, http.StatusNotFound, false},
		{"seq=5", errors.New("store: the event log no longer holds sequence numbers 5 to 9"), http.StatusConflict, false},
	} {
		src := &replayer{err: tc.err}
		s := New(Config{Listen: "127.0.0.1:0"}, src, NewMetrics())
		rec := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/bus/replay?"+tc.query, nil))
		if rec.Code != tc.code {
			t.Errorf("%q: %d %s, want %d", tc.query, rec.Code, rec.Body, tc.code)
			continue
		}
		if tc.code == http.StatusOK && (!src.asked || src.gotHeight != tc.byHeight || !strings.Contains(rec.Body.String(), `"from_seq"`)) {
			t.Errorf("%q: asked %v height %v, body %s", tc.query, src.asked, src.gotHeight, rec.Body)
		}
		if tc.code == http.StatusBadRequest && src.asked {
			t.Errorf("%q: a bad request reached the node", tc.query)
		}
	}
	// A node without the method (no publisher at all) answers 404.
	s := New(Config{Listen: "127.0.0.1:0"}, fakeSource{}, NewMetrics())
	rec := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/bus/replay?seq=1", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("without a publisher: %d", rec.Code)
	}
}
