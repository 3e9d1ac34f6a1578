package main

import "context"

// runServe is `sshtap serve`. STUB: owned by the serve work.
func (a *app) runServe(ctx context.Context, args []string) int { return exitError }
