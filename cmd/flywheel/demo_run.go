package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func runDemo(cmd *cobra.Command, g *globals) error {
	return errors.New("the demo needs the local platform")
}
