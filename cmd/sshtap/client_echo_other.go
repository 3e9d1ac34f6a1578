//go:build !linux

package main

// echoOff cannot turn echo off outside Linux: ok is false, and the caller
// reads with term.ReadPassword, which hides what is typed once it runs.
func echoOff(fd int) (restore func(), ok bool) { return func() {}, false }
