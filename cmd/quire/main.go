// Command quire is Quire's one binary: `quire serve` runs a node; submit,
// status, result, cancel and credits are its REST clients. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "quire:", err)
		os.Exit(ExitCode(err))
	}
}
