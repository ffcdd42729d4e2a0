package config

import (
	"reflect"
	"testing"
)

// FuzzDecodeFile: any config file (outside data: the operator's TOML) is
// decoded and validated without a panic, and a valid one written out by
// Encode (as `ember init` and `ember config dump` do) reads back the same.
func FuzzDecodeFile(f *testing.F) {
	f.Add([]byte("[rpc]\nlisten = \"127.0.0.1:8080\"\n"))
	f.Add([]byte("[mempool]\nmax_transactions = -1\n"))
	f.Add([]byte("[store]\ncache_bytes = 9223372036854775807\n[p2p]\npeers = [\"/ip4/127.0.0.1/tcp/1\"]\n"))
	f.Add([]byte("[verify]\ngather_window = \"200us\"\n"))
	f.Add([]byte("[[rpc]]\n"))
	f.Add([]byte("x = \"\\u0000\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := Default()
		if err := decodeFile(&c, b); err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			return
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatalf("a valid config does not encode: %v", err)
		}
		back := Default()
		if err := decodeFile(&back, out); err != nil {
			t.Fatalf("the encoded config does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, c) {
			t.Fatalf("the config changed when encoded and decoded:\n%s", out)
		}
	})
}

// FuzzSetKey: every key takes any text from a flag or the environment
// without a panic.
func FuzzSetKey(f *testing.F) {
	f.Add(uint16(0), "127.0.0.1:0")
	f.Add(uint16(3), "-1")
	f.Add(uint16(7), "1e400")
	f.Add(uint16(11), "200us")
	f.Add(uint16(13), "a,b,,c")
	f.Fuzz(func(t *testing.T, i uint16, val string) {
		k := keyList[int(i)%len(keyList)]
		c := Default()
		if err := k.set(&c, val); err != nil {
			return
		}
		_ = c.Validate()
	})
}
