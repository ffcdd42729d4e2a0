package engine_test

import "os"

// readFile is in its own file so that the test's os import is obvious: the
// rule is for the engine's code, not its tests.
func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
