// Package config is the operator's configuration of a node: one namespace
// of keys ("section.key") over four sources, in order of precedence:
// command-line flags (--set key=value and a few shorthands), environment
// variables (EMBER_SECTION_KEY), the TOML file, and the defaults below.
//
// Every key is declared once, in the Config struct, with its TOML name and
// its documentation; docs/config.md is generated from it (and a test keeps
// the two equal). Unknown keys and bad values are refused at start, naming
// the key and the form expected.
package config
