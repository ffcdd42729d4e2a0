package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/emberchain/ember/netio/amqp"
)

// The AMQP event publisher's metrics (docs/bus.md). Its lag behind the log
// is ember_eventlog_consumer_lag{consumer="amqp-publisher"}.
var (
	descPubConnected = prometheus.NewDesc("ember_amqp_events_connected", "1 while the event publisher is connected to the broker.", nil, nil)
	descPubBlocked   = prometheus.NewDesc("ember_amqp_events_blocked", "1 while the broker blocks the event publisher (flow control).", nil, nil)
	descPubMessages  = prometheus.NewDesc("ember_amqp_events_total", "Events published to koinos.event (repeats after a reconnect included), confirmed by the broker, or refused by it (nacked; published again).", []string{"result"}, nil)
	descPubReconnect = prometheus.NewDesc("ember_amqp_events_reconnects_total", "Times the event publisher connected again.", nil, nil)
	descPubLost      = prometheus.NewDesc("ember_amqp_events_lost_total", "Events the log dropped (its cap) before the publisher could publish them.", nil, nil)
	descPubCursor    = prometheus.NewDesc("ember_amqp_events_cursor", "The first event sequence number not yet confirmed by the broker.", nil, nil)
)

var pubDescs = []*prometheus.Desc{descPubConnected, descPubBlocked, descPubMessages, descPubReconnect, descPubLost, descPubCursor}

func collectPublisher(on bool, p amqp.PublisherStats, gauge, counter func(*prometheus.Desc, float64, ...string)) {
	if !on {
		return
	}
	gauge(descPubConnected, bit(p.Connected))
	gauge(descPubBlocked, bit(p.Blocked))
	counter(descPubMessages, float64(p.Published), "published")
	counter(descPubMessages, float64(p.Confirmed), "confirmed")
	counter(descPubMessages, float64(p.Nacked), "nacked")
	counter(descPubReconnect, float64(p.Reconnects))
	counter(descPubLost, float64(p.Lost))
	gauge(descPubCursor, float64(p.Cursor))
}

// bit is a boolean as a gauge's value.
func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
