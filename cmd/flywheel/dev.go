package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/toolcorpus"
)

func newDevCommand(g *globals) *cobra.Command {
	dev := &cobra.Command{
		Use:   "dev",
		Short: "Development aids (fakes of external services)",
	}
	var (
		addr              string
		f                 fakeFlags
		failRateFor       []string
		loseAs, spikeFlag string
	)
	fake := &cobra.Command{
		Use:   "nemo-fake",
		Short: "Serve a stateful fake of the NeMo microservices (a test and development aid, never a platform)",
		Long: `Serve a stateful fake of NeMo's Deployment Management, Customizer, Evaluator, Data Store,
Entity Store and NIM proxy on one address, on its fast setting, for offline development.
Point nmp_config at it: nemo_base_url and datastore_base_url = http://ADDR,
nim_base_url = http://ADDR/nim.

Faults can be injected to reproduce the fault tests by hand: --fail-rate answers a fraction of
requests 503 before touching any state (--fail-rate-for sets the rate of an endpoint class:
deployment, customization, evaluation, datastore, entitystore or nim; of a method: GET, POST,
PATCH, DELETE; or of one endpoint: "POST /v1/customization/jobs"; the most specific wins);
--lose-rate acts on a fraction of POST requests and then loses the answer (the connection is
closed, or with --lose-as 502 a 502 is answered); --latency-spike P:DUR delays a fraction P of
requests by DUR. --seed makes the dice repeatable.

GET http://ADDR/_fake/counters answers JSON counters (never failed): requests served,
resources created, deleted, cancelled and created twice per kind, what is still live
(deployments, unfinished customization and evaluation jobs) and the injected faults by kind.`,
		Example: `  flywheel dev nemo-fake --fail-rate 0.2 --lose-rate 0.05 --latency-spike 0.05:150ms --seed 7
  curl -s localhost:9100/_fake/counters`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options(failRateFor, loseAs, spikeFlag)
			if err != nil {
				return err
			}
			cfg, err := g.load()
			if err != nil {
				return err
			}
			if cfg.Judge.ModelName != "" {
				opts.Models = []string{cfg.Judge.ModelName}
			}
			return nemotest.ListenAndServe(cmd.Context(), addr, opts, g.logger(cfg))
		},
	}
	fl := fake.Flags()
	fl.StringVar(&addr, "addr", "127.0.0.1:9100", "listen address")
	fl.Float64Var(&f.failRate, "fail-rate", 0, "fraction of requests answered 503 before the fake acts (0..1)")
	fl.StringArrayVar(&failRateFor, "fail-rate-for", nil,
		"KEY=RATE: the 503 rate of an endpoint class ("+strings.Join(nemotest.Classes, ", ")+"), a method or an endpoint (repeatable)")
	fl.Float64Var(&f.loseRate, "lose-rate", 0, "fraction of POST requests acted on whose answer is then lost (0..1)")
	fl.StringVar(&loseAs, "lose-as", "cut", "how a lost answer ends: cut (connection closed without an answer) or 502")
	fl.DurationVar(&f.latency, "latency", 0, "latency added to every request")
	fl.StringVar(&spikeFlag, "latency-spike", "", "P:DUR: a fraction P of requests wait DUR more (for example 0.05:150ms)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the fault dice and of generated ids (0: a fixed default)")
	fl.BoolVar(&f.opts.FailDeployments, "fail-deployments", false, "deployments go created → pending → failed")
	fl.BoolVar(&f.opts.FailCustomizations, "fail-customizations", false, "customization jobs fail after their first epoch")
	fl.BoolVar(&f.opts.StuckCustomizations, "stuck-customizations", false, "customization jobs run without progress")
	fl.BoolVar(&f.opts.StuckEvaluations, "stuck-evaluations", false, "evaluation jobs run without progress")
	fl.BoolVar(&f.opts.NotEnoughResources, "not-enough-resources", false, "customization jobs stay pending with NotEnoughResources")
	fl.DurationVar(&f.opts.DeploymentReadyAfter, "deployment-ready-after", nemotest.DeploymentReadyAfterDefault, "time until a deployment is ready")
	fl.DurationVar(&f.opts.JobStartAfter, "job-start-after", nemotest.JobStartAfterDefault, "time customization and evaluation jobs stay created, then pending")
	fl.DurationVar(&f.opts.EpochDuration, "epoch-duration", nemotest.EpochDurationDefault, "duration of one fine-tuning epoch")
	fl.DurationVar(&f.opts.EvalDuration, "eval-duration", nemotest.EvalDurationDefault, "duration of an evaluation job")
	dev.AddCommand(fake, newCorpusCommand())
	return dev
}

// newCorpusCommand is `flywheel dev corpus`: the synthetic tool-calling
// corpus, as JSONL in the blueprint's log format.
func newCorpusCommand() *cobra.Command {
	var (
		n    int
		seed uint64
		out  string
	)
	cmd := &cobra.Command{
		Use:   "corpus",
		Short: "Write the synthetic tool-calling corpus (for pre-training) as JSONL logs",
		Long: `Write N records of the synthetic tool-calling corpus in the blueprint's log format:
hundreds of generated tool schemas, single calls, a choice among offered tools, parallel
calls and plain-text answers when no tool fits, with every string argument copied from the
request. The same --seed gives byte-identical output.`,
		Example: `  flywheel dev corpus --n 20000 --seed 1 --out corpus.jsonl`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n <= 0 {
				return fmt.Errorf("--n: want a positive number of records, got %d", n)
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				defer f.Close()
				bw := bufio.NewWriter(f)
				if _, err := toolcorpus.WriteJSONL(bw, toolcorpus.Config{N: n, Seed: seed}); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
				if err := bw.Flush(); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("write %s: %w", out, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %d records to %s\n", n, out)
				return nil
			}
			_, err := toolcorpus.WriteJSONL(w, toolcorpus.Config{N: n, Seed: seed})
			return err
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&n, "n", 10000, "number of records")
	fl.Uint64Var(&seed, "seed", 1, "seed of every draw")
	fl.StringVar(&out, "out", "", "output file (default standard output)")
	return cmd
}

// fakeFlags are the nemo-fake flags that need checking before they become
// nemotest.Options.
type fakeFlags struct {
	opts               nemotest.Options
	failRate, loseRate float64
	latency            time.Duration
	seed               uint64
}

// options checks the flags and returns the fake's options; every error
// names its flag.
func (f fakeFlags) options(failRateFor []string, loseAs, spike string) (nemotest.Options, error) {
	o := f.opts
	var err error
	if o.ErrorRate, err = rate("--fail-rate", f.failRate); err != nil {
		return o, err
	}
	if o.LostResponseRate, err = rate("--lose-rate", f.loseRate); err != nil {
		return o, err
	}
	for _, kv := range failRateFor {
		key, val, ok := strings.Cut(kv, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return o, fmt.Errorf("--fail-rate-for %q: want KEY=RATE", kv)
		}
		if !knownFaultKey(key) {
			return o, fmt.Errorf("--fail-rate-for %q: %q is not an endpoint class (%s), a method (GET, POST, PATCH, DELETE) or an endpoint such as %q",
				kv, key, strings.Join(nemotest.Classes, ", "), nemotest.EndpointCustomizationCreate)
		}
		v, perr := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if perr != nil {
			return o, fmt.Errorf("--fail-rate-for %q: rate %q is not a number", kv, val)
		}
		if v, err = rate("--fail-rate-for "+key, v); err != nil {
			return o, err
		}
		if o.ErrorRates == nil {
			o.ErrorRates = map[string]float64{}
		}
		o.ErrorRates[key] = v
	}
	switch loseAs {
	case "cut":
		o.CutLostResponses = true
	case "502":
	default:
		return o, fmt.Errorf("--lose-as %q: want cut or 502", loseAs)
	}
	if f.latency < 0 {
		return o, fmt.Errorf("--latency %s: must not be negative", f.latency)
	}
	o.Latency = f.latency
	if spike != "" {
		p, d, ok := strings.Cut(spike, ":")
		if !ok {
			return o, fmt.Errorf("--latency-spike %q: want P:DUR, for example 0.05:150ms", spike)
		}
		v, perr := strconv.ParseFloat(p, 64)
		if perr != nil {
			return o, fmt.Errorf("--latency-spike %q: fraction %q is not a number", spike, p)
		}
		if o.SpikeRate, err = rate("--latency-spike", v); err != nil {
			return o, err
		}
		if o.Spike, perr = time.ParseDuration(d); perr != nil || o.Spike <= 0 {
			return o, fmt.Errorf("--latency-spike %q: %q is not a positive duration such as 150ms", spike, d)
		}
	}
	for name, d := range map[string]time.Duration{"--deployment-ready-after": o.DeploymentReadyAfter,
		"--job-start-after": o.JobStartAfter, "--epoch-duration": o.EpochDuration, "--eval-duration": o.EvalDuration} {
		if d <= 0 {
			return o, fmt.Errorf("%s %s: must be positive", name, d)
		}
	}
	o.Seed = f.seed
	return o, nil
}

// rate checks that v is a fraction.
func rate(flag string, v float64) (float64, error) {
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("%s %v: must be a fraction between 0 and 1", flag, v)
	}
	return v, nil
}

// knownFaultKey reports whether key names an endpoint class, a method or
// an endpoint of the fake.
func knownFaultKey(key string) bool {
	if slices.Contains(nemotest.Classes, key) {
		return true
	}
	switch key {
	case "GET", "POST", "PATCH", "DELETE":
		return true
	}
	return slices.Contains(nemotest.NewHandler(nemotest.Options{}).Endpoints(), key)
}
