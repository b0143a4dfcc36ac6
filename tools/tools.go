// Package tools embeds the helper programs Flywheel runs outside Go: the
// PyTorch trainer of the local platform.
package tools

import _ "embed"

//go:embed trainer.py
var trainer string

// Trainer returns the source of the local platform's trainer (trainer.py),
// run with Debian's python3 and python3-torch.
func Trainer() string { return trainer }
