package local

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the programs the platform
// runs: started through a link named llama-server it is a fake server,
// through a link named fake-python a fake trainer.
func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "llama-server":
		os.Exit(fakeServer(os.Args[1:]))
	case "fake-python":
		os.Exit(fakeTrainer(os.Args[2:]))
	}
	if e2eChild() {
		return
	}
	os.Exit(m.Run())
}

// fakeServer answers /health and /v1/models like llama-server until SIGTERM.
func fakeServer(args []string) int {
	var port, alias string
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--port":
			port = args[i+1]
		case "--alias":
			alias = args[i+1]
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"status":"ok"}`) })
	mux.HandleFunc("/v1/models", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"data": []map[string]string{{"id": alias}}})
	})
	go func() { _ = http.Serve(l, mux) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	return 0
}

// fakeTrainer prints the trainer's progress lines: --epochs epochs of 3
// steps, 100 ms each (an error with --epochs 99), and writes --out.
func fakeTrainer(args []string) int {
	var out string
	epochs := 1
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--out":
			out = args[i+1]
		case "--epochs":
			fmt.Sscan(args[i+1], &epochs)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	if epochs == 99 {
		fmt.Println(`{"event": "error", "message": "no usable training examples"}`)
		return 1
	}
	total := 3 * epochs
	fmt.Printf(`{"event": "start", "total_steps": %d}`+"\n", total)
	for step := 1; step <= total; step++ {
		select {
		case <-sig:
			fmt.Printf(`{"event": "cancelled", "step": %d}`+"\n", step-1)
			return 3
		case <-time.After(100 * time.Millisecond):
		}
		fmt.Printf(`{"event": "step", "step": %d, "epoch": %g, "loss": %g, "progress": %g}`+"\n",
			step, float64(step)/3, 5.0/float64(step), float64(step)/float64(max(total, 1)))
	}
	if err := os.WriteFile(out, []byte("GGUF"), 0o644); err != nil {
		return 1
	}
	fmt.Printf(`{"event": "done", "output": %q, "kind": "model", "steps": %d, "epochs": %d, "val_loss": 0.5}`+"\n", out, total, epochs)
	return 0
}
