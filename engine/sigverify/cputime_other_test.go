//go:build !unix

package sigverify

func processCPU() int64 { return 0 }
