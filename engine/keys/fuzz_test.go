package keys

import (
	"bytes"
	"testing"
)

// FuzzParse: a key file's text (outside data: the operator's file) parses
// without a panic, and a key that parses writes back to text that parses to
// the same key.
func FuzzParse(f *testing.F) {
	f.Add(Ed25519FromSeed(bytes.Repeat([]byte{7}, 32)).String())
	if k, err := Secp256k1FromBytes(bytes.Repeat([]byte{9}, 32)); err == nil {
		f.Add(k.String())
	}
	f.Add("ed25519:")
	f.Add("ed25519:0OIl")
	f.Add("5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		k, err := Parse(text)
		if err != nil {
			return
		}
		back, err := Parse(k.String())
		if err != nil {
			t.Fatalf("%q parsed, its text form %q does not: %v", text, k.String(), err)
		}
		if back.Scheme() != k.Scheme() || !bytes.Equal(back.PublicKey(), k.PublicKey()) || back.Address() != k.Address() {
			t.Fatalf("%q: the key changed when written and read again", text)
		}
	})
}
