package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkStableFields fails unless the JSON object b has every stable field.
func checkStableFields(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range stableFields {
		if _, ok := m[f]; !ok {
			t.Errorf("the JSON report has no %q", f)
		}
	}
	return m
}

func TestReportJSONHasStableFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := WriteJSON(path, &Report{Scheme: "ed25519", Commit: "abc"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := checkStableFields(t, b)
	if m["scheme"] != "ed25519" || m["commit"] != "abc" {
		t.Fatalf("fields: %v", m)
	}
}

// TestSamplesCSV checks the per-transaction CSV line by line on a run made
// by hand: one transaction included, one admitted and lost, one refused,
// one skipped behind it.
func TestSamplesCSV(t *testing.T) {
	p := &plan{accounts: 2, body: make([][]byte, 4), acct: []int32{0, 1, 0, 1}, nonce: []uint64{1, 1, 2, 2}}
	sub := &submitter{spec: LoadSpec{Rate: 1000}, status: []uint8{stAcked, stAcked, stRejected, stSkipped},
		submitNs: []int64{0, 1_000_000, 2_000_000, 0}, ackNs: []int64{5_000_000, 6_000_000, 0, 0}}
	fol := &follower{blocks: []*blockObs{{Height: 7, TsMs: 1_000_250, SeenNs: 300_000_000}}, blockOf: []int32{0, -1, -1, -1}}
	s := &samplesWriter{p: p, sub: sub, fol: fol, t0WallMs: 1_000_000, rated: true}
	var b bytes.Buffer
	if err := s.write(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		csvHeader,
		{"0", "0", "1", "included", "0.000", "0.000", "5.000", "300.000", "7", "250.000", "5.000", "300.000", "250.000"},
		{"1", "1", "1", "lost", "1.000", "1.000", "6.000", "", "", "", "5.000", "", ""},
		{"2", "0", "2", "rejected", "2.000", "2.000", "", "", "", "", "", "", ""},
		{"3", "1", "2", "skipped", "3.000", "", "", "", "", "", "", "", ""},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(want), b.String())
	}
	for i := range want {
		if strings.Join(rows[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("row %d:\n got %v\nwant %v", i, rows[i], want[i])
		}
	}
}

func TestLoadSpecValidate(t *testing.T) {
	for _, c := range []struct {
		spec     LoadSpec
		accounts int
		want     string
	}{
		{LoadSpec{Txs: 0, Concurrency: 1, Batch: 1}, 10, "at least one transaction"},
		{LoadSpec{Txs: 10, Concurrency: 20, Batch: 1}, 10, "more than --accounts"},
		{LoadSpec{Txs: 10, Concurrency: 4, Batch: 3}, 10, "accounts per worker"},
		{LoadSpec{Txs: 10, Concurrency: 1, Batch: 1, Rate: -1}, 10, "--rate"},
	} {
		err := c.spec.validate(c.accounts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("%+v: error %v, want one mentioning %q", c.spec, err, c.want)
		}
	}
	ok := LoadSpec{Txs: 10, Concurrency: 2, Batch: 5}
	if err := ok.validate(10); err != nil {
		t.Errorf("a valid spec: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Accounts: -1},
		{Node: NodeOptions{Mode: NodeExternal, URL: "http://x/"}},
		{KeysDir: "/tmp"},
		{Node: NodeOptions{Mode: "docker"}},
	} {
		o.ensureDefaults()
		if err := o.validate(); err == nil || !strings.HasPrefix(err.Error(), "bench: ") {
			t.Errorf("%+v: error %v", o, err)
		}
	}
}

// The table gives each block's build and store time, from the node's log.
func TestReportTableBlockTimes(t *testing.T) {
	r := &Report{BlockIntervalMs: 1000}
	r.Node.ProduceMsTotal = 900
	r.Node.ProduceMs = Summarize([]float64{100, 200, 600})
	var b bytes.Buffer
	r.Table(&b)
	if !strings.Contains(b.String(), "block build+store") || !strings.Contains(b.String(), "p99 600") || !strings.Contains(b.String(), "60% of an interval; 3 blocks") {
		t.Fatalf("table:\n%s", b.String())
	}
}
