package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/node"
)

// replaySource is a node that may publish events (node.Node).
type replaySource interface {
	ReplayEvents(ctx context.Context, seq uint64, byHeight bool) (uint64, error)
}

// busRoutes serves POST /bus/replay?seq=N or ?height=H: the AMQP event
// publisher publishes every event again from there (docs/bus.md).
func busRoutes(mux *http.ServeMux, src Source, log *slog.Logger) {
	mux.HandleFunc("POST /bus/replay", func(w http.ResponseWriter, r *http.Request) {
		rs, ok := src.(replaySource)
		if !ok {
			http.Error(w, node.ErrNoPublisher.Error(), http.StatusNotFound)
			return
		}
		q := r.URL.Query()
		seqArg, heightArg := q.Get("seq"), q.Get("height")
		if (seqArg == "") == (heightArg == "") {
			http.Error(w, "give one of seq (an event sequence number) or height (a block height)", http.StatusBadRequest)
			return
		}
		arg, byHeight := seqArg, false
		if heightArg != "" {
			arg, byHeight = heightArg, true
		}
		v, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			http.Error(w, "seq and height are unsigned integers: "+err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		from, err := rs.ReplayEvents(ctx, v, byHeight)
		switch {
		case errors.Is(err, node.ErrNoPublisher):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case errors.Is(err, amqp.ErrNotConnected):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		if log != nil {
			log.Info("event replay asked on the admin listener", "from_seq", from)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]uint64{"from_seq": from})
	})
}
