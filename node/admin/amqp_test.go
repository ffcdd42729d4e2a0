package admin

import (
	"testing"
	"time"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/node"
)

func TestAMQPMetrics(t *testing.T) {
	off := scrape(t, fakeSource{node.Stats{HeadTime: time.Now()}})
	if _, ok := off["ember_amqp_connected"]; ok {
		t.Fatal("AMQP metrics reported with the bridge off")
	}
	got := scrape(t, fakeSource{node.Stats{HeadTime: time.Now(), AMQP: amqp.ServerStats{
		Connected: true, Reconnects: 4,
		Services: map[string]amqp.ServiceStats{"chain": {Served: 10, Rejected: 2, Expired: 1, Redelivered: 3}},
	}}})
	for series, want := range map[string]float64{
		"ember_amqp_connected":        1,
		"ember_amqp_blocked":          0,
		"ember_amqp_reconnects_total": 4,
		`ember_amqp_requests_total{outcome="served",service="chain"}`:   10,
		`ember_amqp_requests_total{outcome="rejected",service="chain"}`: 2,
		`ember_amqp_requests_total{outcome="expired",service="chain"}`:  1,
		`ember_amqp_redelivered_total{service="chain"}`:                 3,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
}
