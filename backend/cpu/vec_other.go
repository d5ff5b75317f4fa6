//go:build !amd64

package cpu

func bestLoops() vecLoops { return portableLoops() }

// assemblyLoops are the assembly sets this CPU can run: none here.
func assemblyLoops() []vecLoops { return nil }
