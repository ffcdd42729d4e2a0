package main

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/rpcgw"
)

// gatewayAdmin is a remote gateway's operator surface: /healthz for load
// balancers (503 while the gateway cannot reach a node serving chain) and
// /metrics.
func gatewayAdmin(srv *rpcgw.Server, c *amqp.Client, services []rpcgw.Service) http.Handler {
	mux := http.NewServeMux()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&gatewayCollector{srv: srv, c: c, services: services})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status, code, consumers := "ok", http.StatusOK, c.Consumers("chain")
		switch {
		case consumers < 0:
			status, code = "not connected to the broker", http.StatusServiceUnavailable
		case consumers == 0:
			status, code = "no node consumes the chain queue", http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(struct {
			Status    string `json:"status"`
			Consumers int    `json:"chain_consumers"`
		}{status, consumers})
	})
	return mux
}

type gatewayCollector struct {
	srv      *rpcgw.Server
	c        *amqp.Client
	services []rpcgw.Service
}

var (
	descGWConnected = prometheus.NewDesc("ember_rpcgw_connected", "1 while the gateway is connected to the broker.", nil, nil)
	descGWConsumers = prometheus.NewDesc("ember_rpcgw_consumers", "Consumers of each service queue at the last probe (-1: not connected).", []string{"service"}, nil)
	descGWCalls     = prometheus.NewDesc("ember_rpcgw_bus_calls_total", "Calls forwarded over the bus, by outcome: answered, unavailable (failed at once: 503), timeout, lost (connection lost while waiting).", []string{"outcome"}, nil)
	descGWInFlight  = prometheus.NewDesc("ember_rpcgw_bus_in_flight", "Calls waiting for a reply.", nil, nil)
	descGWRequests  = prometheus.NewDesc("ember_rpcgw_requests_total", "JSON-RPC calls answered (each batch element counts), and of them with an error.", []string{"result"}, nil)
	descGWRejected  = prometheus.NewDesc("ember_rpcgw_overload_total", "JSON-RPC requests refused for overload (503) or queue timeout (504).", []string{"status"}, nil)
)

func (g *gatewayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGWConnected, descGWConsumers, descGWCalls, descGWInFlight, descGWRequests, descGWRejected} {
		ch <- d
	}
}

func (g *gatewayCollector) Collect(ch chan<- prometheus.Metric) {
	cs, ss := g.c.Stats(), g.srv.Stats()
	connected := 0.0
	if cs.Connected {
		connected = 1
	}
	ch <- prometheus.MustNewConstMetric(descGWConnected, prometheus.GaugeValue, connected)
	for _, s := range g.services {
		ch <- prometheus.MustNewConstMetric(descGWConsumers, prometheus.GaugeValue, float64(g.c.Consumers(s.Name)), s.Name)
	}
	for outcome, n := range map[string]uint64{"answered": cs.Calls, "unavailable": cs.Unavailable, "timeout": cs.Timeouts, "lost": cs.Lost} {
		ch <- prometheus.MustNewConstMetric(descGWCalls, prometheus.CounterValue, float64(n), outcome)
	}
	ch <- prometheus.MustNewConstMetric(descGWInFlight, prometheus.GaugeValue, float64(cs.InFlight))
	ch <- prometheus.MustNewConstMetric(descGWRequests, prometheus.CounterValue, float64(ss.Calls), "all")
	ch <- prometheus.MustNewConstMetric(descGWRequests, prometheus.CounterValue, float64(ss.CallErrors), "error")
	ch <- prometheus.MustNewConstMetric(descGWRejected, prometheus.CounterValue, float64(ss.Rejected), "503")
	ch <- prometheus.MustNewConstMetric(descGWRejected, prometheus.CounterValue, float64(ss.QueueExpiry), "504")
}
