package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// manifestCommand is `jobs manifest ID`: the run's manifest as JSON, the
// file `jobs create --from-manifest` takes.
func (j *jobsCmd) manifestCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "manifest ID",
		Short: "Print a job's manifest (JSON): its datasets' records and hashes, settings, seed, models and versions",
		Long: "Print a job's manifest as JSON: for each dataset (eval, train, val, icl examples) the ordered record ids\n" +
			"with a SHA-256 of each record and of the list, the effective settings, the seed, the candidates with the\n" +
			"digests of their models and adapters, and the versions involved. Save it and run\n" +
			"`flywheel jobs create --from-manifest FILE` to build exactly the same datasets again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := j.client()
			if err != nil {
				return err
			}
			m, err := c.GetManifest(commandContext(cmd), args[0])
			if err != nil {
				return fmt.Errorf("get manifest of job %s: %w", args[0], err)
			}
			return writeJSON(j.opts.Stdout, m)
		},
	}
}

// readManifest reads a manifest file written by `jobs manifest`.
func readManifest(path string) (*flywheel.Manifest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	m := &flywheel.Manifest{}
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	return m, nil
}
