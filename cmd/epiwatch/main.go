// Command epiwatch is the epidemiological surveillance pipeline: ingest →
// JetStream → processors → ClickHouse and alerts. `epiwatch run` runs every
// component in one process; the other subcommands run one each, or are
// tools around them. This package only parses flags and calls one function
// of internal/app (the services) or internal/tools (the tools) per command.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// exitError carries a process exit code (2 = bad input or usage), as
// app.ExitError does for the services.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	os.Exit(realMain(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs the CLI and returns the exit code; tests call it directly.
func realMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if ae := (*app.ExitError)(nil); errors.As(err, &ae) { // the services' exit codes
		err = &exitError{ae.Code, ae.Err}
	}
	var ee *exitError
	if errors.As(err, &ee) {
		fmt.Fprintln(stderr, "epiwatch:", oneLine(ee.err.Error()))
		return ee.code
	}
	if strings.HasPrefix(err.Error(), "unknown command") { // cobra's, before any command runs
		fmt.Fprintln(stderr, "epiwatch:", oneLine(err.Error()))
		return 2
	}
	fmt.Fprintln(stderr, "epiwatch:", err)
	return 1
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "epiwatch",
		Short: "Event-driven epidemiological surveillance: R, bed occupancy and restriction decisions per region",
		Long: `epiwatch turns case, contact, lab-test, bed-occupancy and vaccination events into
per-region indicators (the reproduction number R with credible intervals, infectious-bed
occupancy, positivity, incidence) and restriction decisions following Kazakhstan's 2020
pandemic plan, live. Events enter over HTTP (or files), flow through NATS JetStream, and
land in ClickHouse for dashboards and analysts; decision changes alert regional HQs.

Configuration: a YAML file (--config, or ./epiwatch.yaml), environment variables
EPIWATCH_<SECTION>_<KEY> (e.g. EPIWATCH_CLICKHOUSE_ADDR), then flags, each overriding the
one before. 'epiwatch config print' shows the result.

Quick start: deploy/local/quickstart.sh (see README.md).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	app.AddFlags(root.PersistentFlags())
	root.AddCommand(
		newRunCmd(),
		newIngestCmd(),
		newProcessCmd(),
		newDecideCmd(),
		newDetectCmd(),
		newLevelCmd(),
		newSinkCmd(),
		newAlertCmd(),
		newImportCmd(),
		newSimulateCmd(),
		newMigrateCmd(),
		newRtCmd(),
		newSignalsCmd(),
		newNowcastCmd(),
		newReplayCmd(),
		newRulesCmd(),
		newDeadLetterCmd(),
		newEraseCmd(),
		newBenchCmd(),
		newTokenCmd(),
		newConfigCmd(),
		newVersionCmd(),
	)
	usageErrorsExit2(root)
	return root
}

// usageErrorsExit2 makes every usage error exit with 2, whichever
// command and whoever detects it: a flag cobra cannot parse ("--r abc"), the
// wrong number of arguments, an unknown command — as the commands' own
// checks (a missing flag) already do. Each says where to read more.
func usageErrorsExit2(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{2, fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	var wrap func(c *cobra.Command)
	wrap = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error {
				if err := args(c, a); err != nil {
					return &exitError{2, fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "epiwatch", version)
			return nil
		},
	}
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Inspect the configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration (file < env < flags) with secrets masked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return app.PrintConfig(envOf(cmd))
		},
	})
	return c
}

// envOf is what a command hands internal/app: its flags, the process
// environment and its output.
func envOf(cmd *cobra.Command) app.Env {
	return app.Env{Flags: cmd.Flags(), Getenv: os.Getenv, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
}
