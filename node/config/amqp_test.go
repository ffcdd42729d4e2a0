package config

import (
	"strings"
	"testing"
)

func TestAMQPValidation(t *testing.T) {
	bad := []struct {
		set  map[string]string
		want string
	}{
		{map[string]string{"amqp.url": "http://guest:secret@host/"}, "amqp.url must be amqp://"},
		{map[string]string{"amqp.url": "amqp://"}, "amqp.url must be amqp://"},
		{map[string]string{"amqp.services": "chain,wallet"}, `unknown service "wallet"`},
		{map[string]string{"amqp.consumers": "0"}, "amqp.consumers must be above 0"},
		{map[string]string{"amqp.prefetch": "70000"}, "amqp.prefetch must be at most 65535"},
		{map[string]string{"amqp.reconnect_min": "10s", "amqp.reconnect_max": "1s"}, "amqp.reconnect_max (1s) must not be below"},
	}
	for _, tt := range bad {
		_, err := Load(Sources{Set: tt.set})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: err = %v, want %q", tt.set, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the password leaks into the error: %v", err)
		}
	}
	c, err := Load(Sources{Env: []string{"EMBER_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/", "EMBER_AMQP_SERVICES=chain,p2p"}})
	if err != nil || c.AMQP.URL == "" || len(c.AMQP.Services) != 2 {
		t.Fatalf("%+v %v", c.AMQP, err)
	}
	if d := Default(); d.AMQP.URL != "" {
		t.Fatal("the bridge must be off by default")
	}
}
