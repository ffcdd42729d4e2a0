//go:build !unix

package keys

func processCPU() int64 { return 0 }
