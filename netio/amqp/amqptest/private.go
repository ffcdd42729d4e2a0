package amqptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Bounds on the waits of a private broker.
const (
	privateFirstStart = 60 * time.Second // boot of a fresh node
	privateRestart    = 30 * time.Second // start_app after stop_app
	privateCtlTimeout = 30 * time.Second // one rabbitmqctl call
	privateExitWait   = 15 * time.Second // node exit after "stop", before SIGKILL
)

// PrivateBroker is a RabbitMQ node of the test's own, for tests that stop
// and restart the broker without disturbing the shared one.
//
// The node gets a unique name (ember-test-<pid>-<n>@localhost), AMQP and
// Erlang distribution ports picked at runtime on 127.0.0.1, and its own
// HOME (with its own Erlang cookie), data, log, config and enabled-plugins
// files (no plugins, so nothing binds 15672) in a temporary directory. The
// system's rabbitmq-env.conf and rabbitmq.conf are not read. guest/guest
// may connect from loopback, as by default.
type PrivateBroker struct {
	// URL is amqp://guest:guest@127.0.0.1:<port>/ of the node.
	URL string

	node    string // Erlang node name, name@localhost
	port    int    // AMQP port
	dir     string // HOME, data, logs; removed at cleanup
	ctl     string // rabbitmqctl
	env     []string
	cmd     *exec.Cmd     // rabbitmq-server, leader of its process group
	exited  chan struct{} // closed when cmd has exited
	exitErr error         // set before exited is closed
}

var privateSeq atomic.Int64

// unavailable skips the test, or fails it in CI, where RabbitMQ is installed.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("private RabbitMQ is required in CI: "+format, args...)
	}
	t.Skipf("private RabbitMQ not available: "+format, args...)
}

// rabbitScripts finds rabbitmq-server and rabbitmqctl. The Debian/Ubuntu
// package's /usr/sbin scripts are wrappers that su to the rabbitmq user
// and drop the environment, so the real scripts in /usr/lib/rabbitmq/bin
// are preferred.
func rabbitScripts() (server, ctl string, err error) {
	dirs := []string{"/usr/lib/rabbitmq/bin"}
	if p, err := exec.LookPath("rabbitmq-server"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
		if r, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(r))
		}
	}
	for _, d := range dirs {
		s, c := filepath.Join(d, "rabbitmq-server"), filepath.Join(d, "rabbitmqctl")
		if isExecutable(s) && isExecutable(c) {
			return s, c, nil
		}
	}
	return "", "", errors.New("rabbitmq-server/rabbitmqctl not found (install rabbitmq-server)")
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartPrivateBroker starts a RabbitMQ node of the test's own and waits
// (at most 60 s) until it accepts AMQP connections. The node is stopped
// and its files removed when the test ends, whether or not it failed.
// Without RabbitMQ installed, or if the node cannot start, the test is
// skipped, or fails when CI=true.
func StartPrivateBroker(t testing.TB) *PrivateBroker {
	t.Helper()
	server, ctl, err := rabbitScripts()
	if err != nil {
		unavailable(t, "%v", err)
	}
	if _, err := exec.LookPath("erl"); err != nil {
		unavailable(t, "erl (Erlang) not on PATH: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("private broker: free AMQP port: %v", err)
	}
	distPort, err := freePort()
	for err == nil && distPort == port {
		distPort, err = freePort()
	}
	if err != nil {
		t.Fatalf("private broker: free distribution port: %v", err)
	}
	// A short directory of our own rather than t.TempDir(): the node's
	// cleanup must run (and kill it) before the files go, and the paths
	// show up in the node's logs and command line.
	dir, err := os.MkdirTemp("", "ember-rmq-")
	if err != nil {
		t.Fatalf("private broker: %v", err)
	}
	b := &PrivateBroker{
		URL:    fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", port),
		node:   fmt.Sprintf("ember-test-%d-%d@localhost", os.Getpid(), privateSeq.Add(1)),
		port:   port,
		dir:    dir,
		ctl:    ctl,
		exited: make(chan struct{}),
	}
	if err := b.writeFiles(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("private broker: %v", err)
	}
	b.env = b.environ(distPort)

	out, err := os.Create(filepath.Join(dir, "log", "server.out"))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("private broker: %v", err)
	}
	cmd := exec.Command(server)
	cmd.Dir = dir
	cmd.Env = b.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		out.Close()
		os.RemoveAll(dir)
		unavailable(t, "start %s: %v", server, err)
	}
	b.cmd = cmd
	go func() {
		b.exitErr = cmd.Wait()
		out.Close()
		close(b.exited)
	}()
	t.Cleanup(b.shutdown)

	if err := b.waitAMQP(privateFirstStart); err != nil {
		unavailable(t, "node %s did not accept AMQP on 127.0.0.1:%d within %v: %v\n%s",
			b.node, port, privateFirstStart, err, b.logTail())
	}
	t.Logf("private broker %s at 127.0.0.1:%d up in %v", b.node, port, time.Since(start).Round(time.Millisecond))
	return b
}

// writeFiles lays out the node's directory: its HOME with an Erlang
// cookie, an empty rabbitmq-env.conf (so /etc/rabbitmq/rabbitmq-env.conf,
// which fixes NODENAME and ERL_FLAGS, is not read), a minimal
// rabbitmq.conf, and an empty enabled-plugins list.
func (b *PrivateBroker) writeFiles() error {
	for _, d := range []string{"mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o700); err != nil {
			return err
		}
	}
	var c [20]byte
	if _, err := rand.Read(c[:]); err != nil {
		return err
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		// Erlang refuses a cookie readable by group or others.
		{".erlang.cookie", strings.ToUpper(hex.EncodeToString(c[:])), 0o400},
		{"rabbitmq-env.conf", "", 0o600},
		{"rabbitmq.conf", "# private test broker; listeners come from RABBITMQ_NODE_IP_ADDRESS/RABBITMQ_NODE_PORT\n" +
			"loopback_users.guest = true\n" +
			"disk_free_limit.absolute = 1MB\n", 0o600},
		{"enabled_plugins", "[].\n", 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(b.dir, f.name), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// environ is the environment of rabbitmq-server and rabbitmqctl: the
// test's, without anything RabbitMQ or Erlang would pick up, plus the
// node's own settings.
func (b *PrivateBroker) environ(distPort int) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "RABBITMQ_"), strings.HasPrefix(k, "ERL_"),
			k == "HOME", k == "NODENAME", k == "CONF_ENV_FILE", k == "NODE_PORT",
			k == "NODE_IP_ADDRESS", k == "CONFIG_FILE", k == "MNESIA_BASE", k == "LOG_BASE",
			k == "ENABLED_PLUGINS_FILE", k == "DIST_PORT", k == "USE_LONGNAME":
			continue
		}
		env = append(env, kv)
	}
	d := b.dir
	return append(env,
		"HOME="+d, // the cookie, for the node and for rabbitmqctl
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(d, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME="+b.node,
		"RABBITMQ_USE_LONGNAME=false",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(b.port),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(distPort),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(d, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(d, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(d, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(d, "advanced.config"), // absent
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(d, "enabled_plugins"),
		"RABBITMQ_PID_FILE="+filepath.Join(d, "rabbitmq.pid"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
}

// rabbitmqctl runs rabbitmqctl -n NODE args... against the node.
func (b *PrivateBroker) rabbitmqctl(timeout time.Duration, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.ctl, append([]string{"-n", b.node}, args...)...)
	cmd.Dir = b.dir
	cmd.Env = b.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("timed out after %v", timeout)
		}
		return fmt.Errorf("rabbitmqctl -n %s %s: %v\n%s", b.node, strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}

// dial tries one AMQP connection to the node.
func (b *PrivateBroker) dial() error {
	c, err := amqp.DialConfig(b.URL, amqp.Config{Dial: amqp.DefaultDial(time.Second)})
	if err != nil {
		return err
	}
	return c.Close()
}

// waitAMQP waits until an AMQP connection succeeds, the node exits, or
// the timeout passes.
func (b *PrivateBroker) waitAMQP(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := b.dial()
		if err == nil {
			return nil
		}
		select {
		case <-b.exited:
			return fmt.Errorf("rabbitmq-server exited: %v (last dial: %v)", b.exitErr, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("last dial: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the broker application (rabbitmqctl stop_app): AMQP
// connections drop and the port closes, while the Erlang node and its data
// stay, so durable queues and persistent messages survive until Start.
func (b *PrivateBroker) Stop(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := b.rabbitmqctl(privateCtlTimeout, "stop_app"); err != nil {
		t.Fatalf("private broker stop: %v\n%s", err, b.logTail())
	}
	// stop_app returns once the application is down; check the listener.
	deadline := time.Now().Add(privateRestart)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.port), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("private broker stop: 127.0.0.1:%d still accepts connections after %v\n%s", b.port, privateRestart, b.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("private broker %s stopped in %v", b.node, time.Since(start).Round(time.Millisecond))
}

// Start starts the broker application again (rabbitmqctl start_app) and
// waits (at most 30 s) until it accepts AMQP connections.
func (b *PrivateBroker) Start(t testing.TB) {
	t.Helper()
	start := time.Now()
	if err := b.rabbitmqctl(privateRestart, "start_app"); err != nil {
		t.Fatalf("private broker start: %v\n%s", err, b.logTail())
	}
	if err := b.waitAMQP(privateRestart); err != nil {
		t.Fatalf("private broker start: no AMQP on 127.0.0.1:%d within %v: %v\n%s", b.port, privateRestart, err, b.logTail())
	}
	t.Logf("private broker %s restarted in %v", b.node, time.Since(start).Round(time.Millisecond))
}

// shutdown stops the node (rabbitmqctl stop, then SIGKILL to its process
// group if it is still there) and removes its files.
func (b *PrivateBroker) shutdown() {
	select {
	case <-b.exited:
	default:
		_ = b.rabbitmqctl(privateCtlTimeout, "stop")
		select {
		case <-b.exited:
		case <-time.After(privateExitWait):
		}
	}
	// Whatever is left of the group (beam.smp, erl_child_setup,
	// inet_gethost, the disk monitor's shell) goes too.
	_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
	<-b.exited
	for i := 0; ; i++ {
		err := os.RemoveAll(b.dir)
		if err == nil || i == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond) // a dying child may still write a log line
	}
}

// logTail is the end of the node's logs, for failure messages.
func (b *PrivateBroker) logTail() string {
	const max = 4000
	var s strings.Builder
	files, _ := filepath.Glob(filepath.Join(b.dir, "log", "*"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		if len(data) > max {
			data = data[len(data)-max:]
		}
		fmt.Fprintf(&s, "--- %s (tail) ---\n%s\n", filepath.Base(f), data)
	}
	if s.Len() == 0 {
		return "(no broker logs)"
	}
	return s.String()
}
