package app

import (
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/flywheel-go/flywheel/internal/config"
	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/platform/local"
)

func newLocalPlatform(cfg *config.Config, logger *slog.Logger) (flywheel.Platform, error) {
	p, err := local.New(LocalOptions(cfg, logger))
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}

// LocalOptions are the local platform's options of cfg.
func LocalOptions(cfg *config.Config, logger *slog.Logger) local.Options {
	l := cfg.Platform.Local
	opts := local.Options{
		DataDir: filepath.Join(cfg.DataDir, "local"), ModelsDir: l.ModelsDir, InstallDir: l.InstallDir,
		LlamaServer: l.LlamaServerPath, Python: l.PythonPath, Threads: l.Threads,
		Logger: logger.With("component", "local"),
	}
	if v, err := strconv.ParseFloat(l.Options["learning_rate"], 64); err == nil {
		opts.LearningRate = v
	}
	if v, err := strconv.Atoi(l.Options["min_epochs"]); err == nil {
		opts.MinEpochs = v
	}
	if v, err := strconv.Atoi(l.Options["augment"]); err == nil {
		opts.Augment = v
	}
	opts.Base = l.Options["base"]
	if v, err := strconv.ParseFloat(l.Options["max_train_seconds"], 64); err == nil {
		opts.MaxTrainSeconds = v
	}
	return opts
}
