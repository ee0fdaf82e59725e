//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

// processCPUSeconds is not known on this system.
func processCPUSeconds() (float64, bool) { return 0, false }
