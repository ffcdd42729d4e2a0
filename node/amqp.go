package node

import (
	"slices"
	"time"

	"github.com/emberchain/ember/internal/supervisor"
	"github.com/emberchain/ember/netio/amqp"
)

// The AMQP bridge's RPC half (docs/bus.md): the node serves the Koinos
// service queues koinos.rpc.<service> through the same backend as its
// JSON-RPC gateway.

// AMQPConfig turns on the AMQP RPC server: amqp.ServerConfig, whose
// Services are chosen by ServiceNames (a subset of Services()).
type AMQPConfig struct {
	amqp.ServerConfig
	// ServiceNames selects the services served; nil: every one of
	// Services().
	ServiceNames []string
	// PublishEvents turns on the event publisher (bus.go): the durable
	// event log to koinos.event.
	PublishEvents bool
	// MempoolEvents adds the admissions to the mempool (it sets
	// Config.LogMempool).
	MempoolEvents bool
	// ContractEvents adds one koinos.event.<contract>.<name> message per
	// contract event (they are in koinos.block.accept's receipt anyway).
	ContractEvents bool
	// NoRPC leaves the RPC server off (events only).
	NoRPC bool
}

// newAMQP builds the AMQP server when configured.
func (n *Node) newAMQP() error {
	if n.cfg.AMQP == nil {
		return nil
	}
	sc := n.cfg.AMQP.ServerConfig
	sc.Services = nil
	for _, s := range Services() {
		if n.cfg.AMQP.ServiceNames == nil || slices.Contains(n.cfg.AMQP.ServiceNames, s.Name) {
			sc.Services = append(sc.Services, s)
		}
	}
	if sc.Logger == nil {
		sc.Logger = n.log
	}
	if n.cfg.AMQP.PublishEvents {
		pub, err := amqp.NewPublisher(amqp.PublisherConfig{
			URL: sc.URL, Names: sc.Names, Logger: sc.Logger,
			ReconnectMin: sc.ReconnectMin, ReconnectMax: sc.ReconnectMax,
		}, eventSource{st: n.store, name: PublisherConsumer, contract: n.cfg.AMQP.ContractEvents})
		if err != nil {
			return err
		}
		n.pub = pub
		n.cfg.LogMempool = n.cfg.LogMempool || n.cfg.AMQP.MempoolEvents
	}
	if n.cfg.AMQP.NoRPC {
		return nil
	}
	srv, err := amqp.NewServer(sc, &backend{n: n})
	if err != nil {
		return err
	}
	n.amqp = srv
	return nil
}

// PublisherStats is the AMQP event publisher's snapshot; zero when it is
// off.
func (n *Node) PublisherStats() amqp.PublisherStats {
	if n.pub == nil {
		return amqp.PublisherStats{}
	}
	return n.pub.Stats()
}

// amqpService runs the AMQP server under the supervisor. Start does not
// wait for the broker: a node whose broker is down still produces and
// serves JSON-RPC, and the server connects when the broker comes up.
func (n *Node) amqpService() supervisor.Service {
	return supervisor.Service{Name: "amqp-rpc", Run: n.amqp.Run, StopTimeout: amqp.DefaultStopTimeout + 5*time.Second}
}

// AMQPStats is the AMQP server's snapshot; zero when it is off.
func (n *Node) AMQPStats() amqp.ServerStats {
	if n.amqp == nil {
		return amqp.ServerStats{}
	}
	return n.amqp.Stats()
}
