// Package engine_test keeps the engine pure: no sockets, files, databases or
// network libraries, and no wall clock (DESIGN §3; Pebble's lint_test.go).
package engine_test

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

var forbidden = []string{
	"os", "os/exec", "net", "net/http", "syscall", "io/ioutil", "io/fs",
	"github.com/cockroachdb/pebble", "github.com/valyala/fasthttp", "github.com/libp2p",
	"github.com/rabbitmq/amqp091-go", "github.com/emberchain/ember/store", "github.com/emberchain/ember/node",
	"github.com/emberchain/ember/rpcgw", "github.com/emberchain/ember/producer",
}

// wallClock matches reads of the clock; durations and time types are fine.
var wallClock = regexp.MustCompile(`\btime\.(Now|Since|Until|Sleep|After|Tick|NewTimer|NewTicker|AfterFunc)\(`)

func TestEngineIsPure(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Dir        string
			GoFiles    []string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		n++
		for _, imp := range p.Imports {
			for _, f := range forbidden {
				if imp == f || strings.HasPrefix(imp, f+"/") {
					t.Errorf("%s imports %s: the engine must not do I/O (inject it)", p.ImportPath, imp)
				}
			}
		}
		for _, f := range p.GoFiles {
			src, err := readFile(p.Dir + "/" + f)
			if err != nil {
				t.Fatal(err)
			}
			if loc := wallClock.FindStringIndex(src); loc != nil {
				t.Errorf("%s/%s reads the clock (%s): pass the time in", p.ImportPath, f, src[loc[0]:loc[1]])
			}
		}
	}
	if n < 8 {
		t.Fatalf("only %d engine packages listed", n)
	}
}
