package main

import "context"

// runDemo is `sshtap demo`. STUB: owned by the demo work.
func (a *app) runDemo(ctx context.Context, args []string) int { return exitError }
