//go:build !linux

package main

// echoOff is a no-op outside Linux: term.ReadPassword still hides what is
// typed once it runs.
func echoOff(fd int) (restore func()) { return func() {} }
