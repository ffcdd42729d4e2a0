package vm

import (
	"bytes"
	"testing"

	chainpb "github.com/emberchain/ember/proto/koinos/chain"
)

// TestSystemCallResultsOwnTheirBytes: what a system call keeps of its
// arguments (event name, data and impacted accounts, the exit value) is
// its own copy: a contract overwriting the argument buffer afterwards, or
// the instance's reset clearing it, changes nothing the call returns.
func TestSystemCallResultsOwnTheirBytes(t *testing.T) {
	event := mustMarshal(&chainpb.EventArguments{Name: "stored", Data: []byte("event data"), Impacted: [][]byte{accountX}})
	exit := exitWith(0, []byte("exit value"), "")
	for _, tc := range []struct {
		name  string
		first []byte // the system call whose arguments are overwritten
		sid   chainpb.SystemCallId
	}{
		{"event", event, chainpb.SystemCallId_event},
		{"exit", exit, chainpb.SystemCallId_exit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			firstAt, exitAt, scratch := int32(scriptData), int32(scriptData+0x400), int32(0x8000)
			// The call reads its arguments from a copy outside the image, so
			// that the reset clears them too.
			n := int32(len(tc.first))
			code := cat(i32c(scratch), i32c(firstAt), i32c(n), []byte{0xfc, 10, 0, 0}, sysCall(tc.sid, scratch, n))
			if tc.sid != chainpb.SystemCallId_exit {
				code = cat(code, i32c(scratch), i32c(0xee), i32c(n), []byte{0xfc, 11, 0},
					sysCall(chainpb.SystemCallId_exit, exitAt, int32(len(exit))))
			}
			contract := wasmModule{
				types:   [][2][]byte{syscallType, {nil, nil}},
				imports: true,
				funcs:   []wasmFunc{{typ: 1, code: code}},
				memory:  &[2]uint32{1, 0},
				exports: map[string]uint32{"_start": 1},
				data:    map[uint32][]byte{uint32(firstAt): tc.first, uint32(exitAt): exit},
			}.bytes()
			v := newVM(t, Config{})
			for range 2 { // the second call on a pooled instance
				res, err := run(t, v, newMemHost(v), contract)
				if err != nil {
					t.Fatal(err)
				}
				if string(res.Value) != "exit value" {
					t.Fatalf("value %q", res.Value)
				}
				if tc.sid == chainpb.SystemCallId_event {
					if len(res.Events) != 1 || res.Events[0].Name != "stored" || string(res.Events[0].Data) != "event data" ||
						len(res.Events[0].Impacted) != 1 || !bytes.Equal(res.Events[0].Impacted[0], accountX) {
						t.Fatalf("events %v", res.Events)
					}
				}
			}
		})
	}
}
