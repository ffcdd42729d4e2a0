// Package supervisor runs a node's services as one unit: started in order,
// each one up before the next starts, stopped in reverse order, and the
// whole node stopped cleanly when any one of them fails.
//
// A service has two phases. Start binds what must exist before the next
// service may rely on it (a listener, restored state) and returns; an error
// there stops the services already started and fails the node at once,
// before READY is sent. Run then serves until its context ends. The
// supervisor sends READY only once every Start has returned, so a service
// manager (systemd's Type=notify) never sees a node that is half up.
//
// Stopping: when the parent context ends or any Run returns (with an error
// or, before the node is told to stop, with nil, which also counts as a
// failure: a service must not stop on its own), the services are stopped
// one at a time from the last started to the first: the gateway drains
// before the network closes, the network before the chain loop writes its
// final checkpoint. Each gets its own context, cancelled in turn, and the
// supervisor waits for its Run to return before cancelling the next.
package supervisor
