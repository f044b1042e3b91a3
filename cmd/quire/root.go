package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Run runs the quire command line with args (without the program name).
func Run(ctx context.Context, args []string) error {
	root := &cobra.Command{
		Use:           "quire",
		Short:         "Quire turns PDFs into structured data, asynchronously, on a cluster of nodes",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(), newSubmitCmd(), newStatusCmd(), newResultCmd(), newCancelCmd(), newCreditsCmd(),
		newWatchCmd(), newJobsCmd(),
		newAdminCmd(), newFakeGeminiCmd(), newBenchCmd(),
		newKeygenCmd(), newTLSCmd(),
	)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// bindEnv gives every flag of fs an environment twin: --http-addr reads
// QUIRE_HTTP_ADDR when the flag is not given. Flags win.
func bindEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := EnvName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("environment %s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// EnvName is the environment twin of a flag: http-addr -> QUIRE_HTTP_ADDR.
func EnvName(flag string) string {
	return "QUIRE_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}
