package grpcgw

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestKeepaliveEnforcement plays a client that pings in a loop with no call
// open, on a raw HTTP/2 connection: the server must send GOAWAY with
// ENHANCE_YOUR_CALM and "too_many_pings", and close the connection.
func TestKeepaliveEnforcement(t *testing.T) {
	s, _ := startServer(t, Config{}, headBackend)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
	}
	var goAway *http2.GoAwayFrame
	for goAway == nil {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goAway = f
		}
	}
	if goAway.ErrCode != http2.ErrCodeEnhanceYourCalm || string(goAway.DebugData()) != "too_many_pings" {
		t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", goAway.ErrCode, goAway.DebugData())
	}
	for {
		if _, err := fr.ReadFrame(); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatal("the server kept the connection open after GOAWAY")
				}
			}
			return
		}
	}
}
