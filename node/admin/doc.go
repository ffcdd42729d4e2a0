// Package admin is the operator's listener, separate from the public
// JSON-RPC one and on loopback by default:
//
//	GET  /metrics          Prometheus text (every metric: docs/operations.md)
//	GET  /healthz          200 ok, 206 degraded or syncing, 503 down; JSON body with the reasons
//	GET  /loglevel         the current log level
//	PUT  /loglevel         set it: body "debug", "info", "warn" or "error"
//	GET  /p2p/peers        the connected peers: address, head, last irreversible block, error score
//	GET  /p2p/bans         the peer bans in force: peer id, until, why
//	POST /p2p/ban          ban a peer: ?peer=ID[&for=DURATION] (p2p.ban_duration by default)
//	POST /p2p/unban        lift a ban: ?peer=ID (static peers are dialled again at once)
//	POST /p2p/connect      dial a peer: ?addr=/ip4/HOST/tcp/PORT/p2p/ID
//	GET  /debug/pprof/...  Go profiles, only with admin.pprof = true
//
// Metrics are read from the node's snapshot (Stats) at scrape time, plus
// histograms fed by the node's Observer and the gateway's Observer; the
// node knows nothing of Prometheus.
package admin
