// Command flywheel is the data flywheel service: one binary that serves the
// REST API with workers (serve), runs workers only (worker), migrates the
// database (migrate), drives jobs (jobs …), loads production logs (load),
// checks and repairs consistency (doctor), backs up the SQLite database
// (backup), runs a complete demo (demo), and
// starts development fakes (dev …).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/flywheel-go/flywheel/internal/app"
	"github.com/flywheel-go/flywheel/internal/cli"
	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr, os.Getenv).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

// globals are the flags every subcommand shares.
type globals struct {
	configPath string
	dbURL      string
	dataDir    string
	logLevel   string
	logFormat  string
	server     string
	token      string
	getenv     func(string) string
	stdout     io.Writer
	stderr     io.Writer
}

// printJSON writes v to standard output as indented JSON.
func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRoot(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	g := &globals{getenv: getenv, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "flywheel",
		Short:         "Data flywheel: turn production LLM traffic into evaluated, fine-tuned, cheaper models",
		Version:       app.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.configPath, "config", getenv("FLYWHEEL_CONFIG"), "config file (the blueprint's config.yaml keys plus ours; env FLYWHEEL_CONFIG)")
	pf.StringVar(&g.dbURL, "db", "", "database URL: sqlite:PATH or postgres://… (default: SQLite in the data dir)")
	pf.StringVar(&g.dataDir, "data-dir", "", "data directory (default: per-user data dir)")
	pf.StringVar(&g.logLevel, "log-level", "", "log level: DEBUG, INFO, WARNING, ERROR")
	pf.StringVar(&g.logFormat, "log-format", "", "log format: json, text or auto")
	server := getenv("FLYWHEEL_SERVER")
	if server == "" {
		server = "http://127.0.0.1:8000"
	}
	pf.StringVar(&g.server, "server", server, "flywheel server URL for jobs commands and load --server (env FLYWHEEL_SERVER)")
	pf.StringVar(&g.token, "token", "", "API token for jobs commands and load --server (env FLYWHEEL_TOKEN; see 'flywheel tokens')")

	root.AddCommand(newServeCommand(g), newWorkerCommand(g), newMigrateCommand(g), newLoadCommand(g), newDoctorCommand(g), newBasesCommand(g),
		newDemoCommand(g), newDevCommand(g), newTokensCommand(g), newLogsCommand(g), newBackupCommand(g))
	root.AddCommand(cli.NewJobsCommand(cli.Options{ServerURL: func() string { return g.server }, Token: g.apiToken,
		Stdout: stdout, Stderr: stderr}))
	root.AddCommand(cli.NewSchedulesCommand(cli.Options{ServerURL: func() string { return g.server }, Token: g.apiToken,
		Stdout: stdout, Stderr: stderr}))
	root.AddCommand(cli.NewWorkloadsCommand(cli.Options{ServerURL: func() string { return g.server }, Token: g.apiToken,
		Stdout: stdout, Stderr: stderr}))
	root.AddCommand(cli.NewPromotionsCommand(cli.Options{ServerURL: func() string { return g.server }, Token: g.apiToken,
		Stdout: stdout, Stderr: stderr}))
	return root
}

// apiToken is --token, else FLYWHEEL_TOKEN. The environment is read when a
// command runs, so that the secret never shows as a flag default in help.
func (g *globals) apiToken() string {
	if g.token != "" {
		return g.token
	}
	return strings.TrimSpace(g.getenv("FLYWHEEL_TOKEN"))
}

// load reads the configuration: defaults, the file, the environment, then
// flags. --db and --data-dir act through the environment Load reads, so
// the defaults that hang off them (the SQLite file, the models directory)
// follow them.
func (g *globals) load() (*config.Config, error) {
	env := func(key string) string {
		switch {
		case key == config.EnvDataDir && g.dataDir != "":
			return g.dataDir
		case key == config.EnvDatabaseURL && g.dbURL != "":
			return g.dbURL
		}
		return g.getenv(key)
	}
	cfg, err := config.Load(g.configPath, env)
	if err != nil {
		return nil, configError(err)
	}
	if g.logLevel != "" {
		cfg.Logging.Level = g.logLevel
	}
	if g.logFormat != "" {
		cfg.Logging.Format = g.logFormat
	}
	if err := cfg.Validate(); err != nil {
		return nil, configError(err)
	}
	return cfg, nil
}

func configError(err error) error {
	var b strings.Builder
	b.WriteString("invalid configuration:")
	fes := config.FieldErrors(err)
	if len(fes) == 0 {
		b.WriteString(" " + err.Error())
	}
	for _, fe := range fes {
		b.WriteString("\n  - " + fe.Error())
	}
	return errors.New(b.String())
}

// logger builds the process logger: JSON when not on a terminal (or when
// asked), text on a terminal.
func (g *globals) logger(cfg *config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Logging.SlogLevel()}
	format := cfg.Logging.Format
	if format == "" || format == config.LogFormatAuto {
		format = config.LogFormatJSON
		if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = config.LogFormatText
		}
	}
	// Every line names its component once, whichever layer named it last.
	if format == config.LogFormatText {
		return slog.New(logging.OneComponent(slog.NewTextHandler(g.stderr, opts)))
	}
	return slog.New(logging.OneComponent(slog.NewJSONHandler(g.stderr, opts)))
}
