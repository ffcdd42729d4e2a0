package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/emberchain/ember/netio/p2p"
)

// networkSource is a node that may run a network (node.Node): Network is
// nil when it runs alone.
type networkSource interface {
	Network() *p2p.Service
}

// maxBanFor bounds a ban asked for on the listener.
const maxBanFor = 30 * 24 * time.Hour

// networkRoutes serves the peers and the operator's bans. Bans live in
// memory: a restart lifts them (docs/network.md).
func networkRoutes(mux *http.ServeMux, src Source, log *slog.Logger) {
	service := func(w http.ResponseWriter) *p2p.Service {
		ns, ok := src.(networkSource)
		if !ok || ns.Network() == nil {
			http.Error(w, "this node runs without a network (p2p.listen is empty)", http.StatusNotFound)
			return nil
		}
		return ns.Network()
	}
	peerParam := func(w http.ResponseWriter, r *http.Request) (peer.ID, bool) {
		p, err := peer.Decode(r.URL.Query().Get("peer"))
		if err != nil {
			http.Error(w, "peer must be a peer id (12D3Koo...): "+err.Error(), http.StatusBadRequest)
			return "", false
		}
		return p, true
	}
	mux.HandleFunc("GET /p2p/peers", func(w http.ResponseWriter, r *http.Request) {
		s := service(w)
		if s == nil {
			return
		}
		peers := s.Peers()
		if peers == nil {
			peers = []p2p.PeerInfo{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(peers)
	})
	mux.HandleFunc("GET /p2p/bans", func(w http.ResponseWriter, r *http.Request) {
		s := service(w)
		if s == nil {
			return
		}
		bans := s.Bans()
		if bans == nil {
			bans = []p2p.Ban{}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(bans)
	})
	mux.HandleFunc("POST /p2p/ban", func(w http.ResponseWriter, r *http.Request) {
		s := service(w)
		if s == nil {
			return
		}
		p, ok := peerParam(w, r)
		if !ok {
			return
		}
		var d time.Duration
		if v := r.URL.Query().Get("for"); v != "" {
			var err error
			if d, err = time.ParseDuration(v); err != nil || d <= 0 || d > maxBanFor {
				http.Error(w, "for must be a duration between 1s and 720h (e.g. 30m)", http.StatusBadRequest)
				return
			}
		}
		s.Ban(p, d)
		if log != nil {
			log.Info("peer banned on the admin listener", "peer", p.String(), "for", d)
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /p2p/unban", func(w http.ResponseWriter, r *http.Request) {
		s := service(w)
		if s == nil {
			return
		}
		p, ok := peerParam(w, r)
		if !ok {
			return
		}
		s.Unban(p)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /p2p/connect", func(w http.ResponseWriter, r *http.Request) {
		s := service(w)
		if s == nil {
			return
		}
		addr := r.URL.Query().Get("addr")
		if _, err := peer.AddrInfoFromString(addr); err != nil {
			http.Error(w, "addr must be a multiaddr ending in /p2p/<peer id> (e.g. /ip4/10.0.0.2/tcp/8888/p2p/12D3Koo...): "+err.Error(), http.StatusBadRequest)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := s.Connect(ctx, addr); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
