package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/emberchain/ember/internal/sdkas"
)

func main() {
	out := flag.String("o", "", "output file (required)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: build-contract -o FILE NAME\n\nNAME is a contract of internal/sdkas/testdata/assembly (token, kvstore, storage).\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := build(flag.Arg(0), *out); err != nil {
		fmt.Fprintln(os.Stderr, "build-contract:", err)
		os.Exit(1)
	}
}

// build compiles the contract and writes it through a temporary file, so
// an interrupted build never leaves a truncated wasm behind.
func build(name, out string) error {
	code, err := sdkas.Build(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, code, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, out); err != nil {
		os.Remove(tmp)
		return err
	}
	fmt.Printf("%s: %d bytes (%s)\n", out, len(code), name)
	return nil
}
