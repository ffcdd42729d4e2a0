package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/emberchain/ember/netio/amqp"
)

// The AMQP RPC server's metrics (docs/bus.md). Reported only when the node
// serves over AMQP.
var (
	descAMQPConnected  = prometheus.NewDesc("ember_amqp_connected", "1 while the AMQP RPC server is connected to the broker and consuming, else 0.", nil, nil)
	descAMQPBlocked    = prometheus.NewDesc("ember_amqp_blocked", "1 while the broker blocks this node's publishing (resource alarm): replies wait.", nil, nil)
	descAMQPReconnects = prometheus.NewDesc("ember_amqp_reconnects_total", "Connection attempts after the first (lost connections and failed dials).", nil, nil)
	descAMQPRequests   = prometheus.NewDesc("ember_amqp_requests_total", "AMQP RPC requests by service and outcome: served (answered, errors included), rejected (malformed, not requeued), expired (dropped: the caller had given up).", []string{"service", "outcome"}, nil)
	descAMQPRedeliver  = prometheus.NewDesc("ember_amqp_redelivered_total", "AMQP RPC requests the broker delivered again (a consumer stopped before acknowledging).", []string{"service"}, nil)
)

var amqpDescs = []*prometheus.Desc{descAMQPConnected, descAMQPBlocked, descAMQPReconnects, descAMQPRequests, descAMQPRedeliver}

func collectAMQP(a amqp.ServerStats, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	if a.Services == nil {
		return
	}
	gauge(descAMQPConnected, bit(a.Connected))
	gauge(descAMQPBlocked, bit(a.Blocked))
	counter(descAMQPReconnects, float64(a.Reconnects))
	for name, s := range a.Services {
		counter(descAMQPRequests, float64(s.Served), name, "served")
		counter(descAMQPRequests, float64(s.Rejected), name, "rejected")
		counter(descAMQPRequests, float64(s.Expired), name, "expired")
		counter(descAMQPRedeliver, float64(s.Redelivered), name)
	}
}
