package main

import (
	"fmt"
	"io"

	"github.com/emberchain/ember/node/config"
)

func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "dump" && args[0] != "keys") {
		fmt.Fprintln(stderr, "Usage: ember config dump [--datadir DIR] [--set key=value ...] | ember config keys")
		return errUsage
	}
	if args[0] == "keys" {
		fmt.Fprint(stdout, config.Describe())
		return nil
	}
	fs := newFlags("config dump", "config dump [--datadir DIR] [--config FILE] [--set key=value ...]", stderr)
	cf := addConfigFlags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	b, err := cfg.Encode()
	if err != nil {
		return err
	}
	_, err = stdout.Write(b)
	return err
}
