package main

import "context"

// runClient is `sshtap [flags] [user@]host [command...]`. STUB.
func (a *app) runClient(ctx context.Context, args []string) int { return exitError }
