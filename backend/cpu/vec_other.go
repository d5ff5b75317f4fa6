//go:build !amd64

package cpu

func bestLoops() vecLoops { return portableLoops() }
