//go:build !locale2e

package local

// e2eChild runs the end-to-end tests' child process; without the
// locale2e tag there is none.
func e2eChild() bool { return false }
