package main_test

// End-to-end crash tests of the flywheel binary. TestMain builds it once;
// each test runs it as child processes (serve, worker, migrate, load) and
// kills them with SIGKILL mid-run:
//
//   - TestCrashEmbeddedServeResumes: kill -9 of an embedded (SQLite) serve
//     while a customization runs on the NeMo fake; after a restart the run
//     completes and no remote resource was created twice.
//   - TestCrashPostgresWorkerRescued: with Postgres, an API-only serve and
//     two workers, kill -9 of the worker running an evaluation; the other
//     worker finishes the run.
//   - TestLocalKillServeLeavesNoServer and TestLocalCancelStopsTrainer: the
//     local platform with a real llama-server and a real PyTorch trainer;
//     they run when FLYWHEEL_LOCAL_E2E=1 (after scripts/install-local.sh)
//     and then never skip.

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver, to watch River's jobs
	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/api"
	"github.com/flywheel-go/flywheel/internal/demo"
	"github.com/flywheel-go/flywheel/internal/platform/nemo/nemotest"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// binaryEnv names the flywheel binary TestMain built.
const binaryEnv = "FLYWHEEL_E2E_BINARY"

// localE2EEnv turns on the tests that need llama-server and PyTorch.
const localE2EEnv = "FLYWHEEL_LOCAL_E2E"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flywheel-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "flywheel")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go build:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	_ = os.Setenv(binaryEnv, bin)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// moduleRoot is the directory holding go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "go.mod not found above the test directory")
		dir = parent
	}
}

// bfclFile is a file of the generated tool-calling corpus, in the
// blueprint's log format.
func bfclFile(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testcorpus.BFCLDir(t), name)
}

// child is a flywheel process (or any program) started by a test.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // valid after done
}

// childEnv is the environment of every child: the test's own, minus the
// variables that would point a child at another configuration, database,
// address or data directory.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "FLYWHEEL_CONFIG", "FLYWHEEL_DATABASE_URL", "FLYWHEEL_DATA_DIR", "FLYWHEEL_ADDR", "FLYWHEEL_SERVER",
			"ELASTICSEARCH_URL", "COMPOSE_PROFILES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start runs the flywheel binary with args in its own
// process group with its output in a log file. Cleanup kills the whole
// group with SIGKILL and, when the test failed, prints the log's end.
func start(t testing.TB, logDir, name string, args ...string) *child {
	t.Helper()
	bin := os.Getenv(binaryEnv)
	require.NotEmpty(t, bin, "binary built by TestMain")
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "start %s", name)
	f.Close()
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.killGroup()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("--- end of %s log (%s) ---\n%s", name, logPath, tailFile(logPath, 6000))
		}
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// kill sends SIGKILL to the process alone (not its group) and waits for it.
func (c *child) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, syscall.Kill(c.pid(), syscall.SIGKILL))
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		require.Fail(t, "process did not die", "%s pid %d", c.name, c.pid())
	}
}

func (c *child) killGroup() {
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// run runs the binary to completion and returns its output.
func run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Getenv(binaryEnv), args...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "flywheel %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// eventually polls cond every interval until it holds, or fails the test
// with what after timeout. It returns how long it waited.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			require.FailNow(t, "timed out", "after %s: %s", timeout, what)
		}
		time.Sleep(interval)
	}
	return time.Since(start)
}

// apiClient talks to a flywheel server over HTTP.
type apiClient struct {
	base string
	http *http.Client
}

func newAPIClient(t *testing.T, addr string) *apiClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &apiClient{base: "http://" + addr, http: &http.Client{Timeout: 10 * time.Second, Transport: tr}}
}

func (c *apiClient) do(method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, nil
}

// waitReady waits for /readyz while the process lives.
func (c *apiClient) waitReady(t *testing.T, proc *child, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, 50*time.Millisecond, "server ready at "+c.base, func() bool {
		require.False(t, proc.exited(), "%s exited: %v", proc.name, proc.err)
		code, err := c.do(http.MethodGet, "/readyz", nil, nil)
		return err == nil && code == http.StatusOK
	})
}

func (c *apiClient) createJob(t *testing.T, workload, client string) string {
	t.Helper()
	var resp api.JobResponse
	_, err := c.do(http.MethodPost, "/api/jobs", api.JobRequest{WorkloadID: workload, ClientID: client}, &resp)
	require.NoError(t, err)
	require.NotEmpty(t, resp.ID)
	return resp.ID
}

func (c *apiClient) job(t *testing.T, id string) api.JobDetailResponse {
	t.Helper()
	var j api.JobDetailResponse
	_, err := c.do(http.MethodGet, "/api/jobs/"+id, nil, &j)
	require.NoError(t, err)
	return j
}

func terminalStatus(s string) bool {
	return s == "completed" || s == "failed" || s == "cancelled"
}

// waitFinished polls the job until its status is terminal.
func (c *apiClient) waitFinished(t *testing.T, id string, timeout time.Duration) api.JobDetailResponse {
	t.Helper()
	var j api.JobDetailResponse
	eventually(t, timeout, 200*time.Millisecond, "job "+id+" finished", func() bool {
		var err error
		_, err = c.do(http.MethodGet, "/api/jobs/"+id, nil, &j)
		return err == nil && terminalStatus(j.Status)
	})
	return j
}

// requireCompleted checks that every candidate went through deployment,
// the three evaluations and its customization.
func requireCompleted(t *testing.T, j api.JobDetailResponse, candidates int) {
	t.Helper()
	require.Equal(t, "completed", j.Status, "run error: %v", ptrString(j.Error))
	require.Len(t, j.NIMs, candidates)
	for _, n := range j.NIMs {
		require.Equal(t, "completed", n.Status, "%s: %v", n.ModelName, ptrString(n.Error))
		types := map[string]bool{}
		for _, e := range n.Evaluations {
			require.NotNil(t, e.FinishedAt, "%s %s unfinished", n.ModelName, e.EvalType)
			require.Nil(t, e.Error, "%s %s", n.ModelName, e.EvalType)
			require.NotEmpty(t, e.Scores, "%s %s has no scores", n.ModelName, e.EvalType)
			types[e.EvalType] = true
		}
		require.Equal(t, map[string]bool{"base-eval": true, "icl-eval": true, "customized-eval": true}, types, n.ModelName)
		require.Len(t, n.Customizations, 1, n.ModelName)
		require.NotNil(t, n.Customizations[0].CustomizedModel, n.ModelName)
		require.Nil(t, n.Customizations[0].Error, n.ModelName)
	}
}

// logStages logs how long each stage of the job took, and its outcome.
func logStages(t *testing.T, j api.JobDetailResponse) {
	t.Helper()
	line := func(who string, s api.Stage) {
		d := "-"
		if s.StartedAt != nil && s.FinishedAt != nil {
			d = s.FinishedAt.Sub(s.StartedAt.Time).Round(100 * time.Millisecond).String()
		}
		t.Logf("  %-28s %-22s %-9s %6s attempts %d %s", who, s.Name, s.Status, d, s.Attempts, ptrString(s.Error))
	}
	for _, s := range j.Stages {
		line("run", s)
	}
	for _, n := range j.NIMs {
		for _, s := range n.Stages {
			line(n.ModelName, s)
		}
	}
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// nemoConfig is a configuration on the NeMo platform of the fake at
// nemoURL/nimURL with two candidates that are fine-tuned.
func nemoConfig(nemoURL, nimURL, engine string, evalConcurrency int) string {
	return fmt.Sprintf(`platform:
  name: nemo
nmp_config:
  nemo_base_url: %[1]s
  nim_base_url: %[2]s
  datastore_base_url: %[1]s
  nmp_namespace: e2e
nims:
  - model_name: meta/llama-3.2-1b-instruct
    context_length: 8192
    gpus: 1
    tag: "1.8.3"
    customization_enabled: true
    customizer_configs:
      target: meta/llama-3.2-1b-instruct@2.0
      gpus: 1
  - model_name: meta/llama-3.2-3b-instruct
    context_length: 8192
    gpus: 1
    tag: "1.8.3"
    customization_enabled: true
    customizer_configs:
      target: meta/llama-3.2-3b-instruct@2.0
      gpus: 1
data_split_config:
  eval_size: 20
  val_ratio: 0.1
  min_total_records: 50
  limit: 200
  random_seed: 3
training_config:
  finetuning_type: lora
  epochs: 2
eval:
  concurrency: %[4]d
logging_config:
  format: json
engine:
%[3]s`, nemoURL, nimURL, engine, evalConcurrency)
}

const bfclWorkload, bfclClient = "bfcl-simple", "bfcl"

// TestCrashEmbeddedServeResumes kills an embedded serve with SIGKILL while
// a customization runs on the NeMo fake, restarts it on the same data
// directory, and checks that the run resumes and completes, that no remote
// resource was created twice, and that nothing is left running remotely.
func TestCrashEmbeddedServeResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := nemotest.NewHandler(nemotest.Options{
		DeploymentPendingAfter: 200 * time.Millisecond,
		DeploymentReadyAfter:   500 * time.Millisecond,
		JobStartAfter:          200 * time.Millisecond,
		EpochDuration:          1500 * time.Millisecond,
	})
	// Evaluations of 20 items, one request at a time, 100 ms each: they
	// run in the serve process while the customization runs remotely.
	hs := httptest.NewServer(slowChat(fake, 100*time.Millisecond))
	t.Cleanup(hs.Close)

	cfg := writeFile(t, filepath.Join(dir, "config.yaml"), nemoConfig(hs.URL, hs.URL+nemotest.NIMPrefix,
		"  poll_interval: 100ms\n  lease_ttl: 3s\n", 1))
	dataDir := filepath.Join(dir, "data")
	db := "sqlite:" + filepath.Join(dataDir, "flywheel.db")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	common := []string{"--config", cfg, "--data-dir", dataDir, "--db", db}

	out := run(t, append([]string{"load", "--file", bfclFile(t, "simple.jsonl")}, common...)...)
	require.Contains(t, out, "Loaded 400 records")

	addr := freeAddr(t)
	serve := start(t, dir, "serve-1", append([]string{"serve", "--addr", addr}, common...)...)
	c := newAPIClient(t, addr)
	c.waitReady(t, serve, 30*time.Second)
	created := time.Now()
	id := c.createJob(t, bfclWorkload, bfclClient)

	// Mid-run: the first candidate's customization runs remotely and its
	// evaluations run in serve.
	eventually(t, 60*time.Second, 20*time.Millisecond, "a customization on the fake and an evaluation in serve", func() bool {
		require.False(t, serve.exited(), "serve exited: %v", serve.err)
		return len(fake.Live().Customizations) > 0 && evaluating(c.job(t, id))
	})
	require.Equal(t, "running", c.job(t, id).Status)
	liveAtKill := fake.Live()
	serve.kill(t)
	killedAt := time.Now()
	t.Logf("killed serve %s after the job's start; live on the fake: %+v", killedAt.Sub(created).Round(time.Millisecond), liveAtKill)

	serve2 := start(t, dir, "serve-2", append([]string{"serve", "--addr", addr}, common...)...)
	c.waitReady(t, serve2, 30*time.Second)
	restarted := time.Now()
	j := c.waitFinished(t, id, 2*time.Minute)
	finished := time.Now()
	requireCompleted(t, j, 2)

	// Cleanup after the run releases what is left; wait for it.
	eventually(t, 30*time.Second, 100*time.Millisecond, "nothing live on the fake", func() bool {
		return fake.Live().Empty()
	})
	counts := fake.Counts()
	require.Zero(t, counts.TotalDuplicates(), "duplicate creations: %v", counts.Duplicates)
	require.Equal(t, 2, counts.Created[nemotest.KindDeployment], "one deployment per candidate: %v", counts.Created)
	require.Equal(t, 2, counts.Created[nemotest.KindCustomization], "one customization per candidate: %v", counts.Created)

	// The evaluation the kill interrupted was handed back at once.
	require.Contains(t, tailFile(serve2.log, 1<<20), "Resuming stages left running by a previous process")
	t.Logf("restart→ready %s, restart→completed %s, whole run %s; created %v",
		restarted.Sub(killedAt).Round(time.Millisecond), finished.Sub(restarted).Round(time.Millisecond),
		finished.Sub(created).Round(time.Millisecond), counts.Created)
}

// evaluating reports whether an evaluation of the job has started and not
// finished.
func evaluating(j api.JobDetailResponse) bool {
	for _, n := range j.NIMs {
		for _, e := range n.Evaluations {
			if e.FinishedAt == nil && e.Progress > 0 {
				return true
			}
		}
	}
	return false
}

// slowChat delays the fake NIM's chat completions (and nothing else), so
// evaluations run long in-process while the NeMo API stays fast.
func slowChat(h http.Handler, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/chat/completions") {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// riverJob is a stage job as River's table shows it.
type riverJob struct {
	id          int64
	stage       string
	attempt     int
	state       string
	attemptedBy []string
}

// runningEvaluation returns a stage job running an evaluation, if any.
func runningEvaluation(t *testing.T, db *sql.DB) (riverJob, bool) {
	t.Helper()
	var (
		j  riverJob
		by string
	)
	err := db.QueryRow(`SELECT id, args->>'stage', attempt, state, array_to_string(attempted_by, ',')
		FROM river_job WHERE kind = 'flywheel_stage' AND state = 'running'
		AND args->>'stage' IN ('run_base_eval', 'run_icl_eval', 'run_customization_eval')
		ORDER BY attempted_at LIMIT 1`).Scan(&j.id, &j.stage, &j.attempt, &j.state, &by)
	if errors.Is(err, sql.ErrNoRows) {
		return j, false
	}
	require.NoError(t, err)
	j.attemptedBy = strings.Split(by, ",")
	return j, true
}

func jobByID(t *testing.T, db *sql.DB, id int64) riverJob {
	t.Helper()
	var (
		j  riverJob
		by string
	)
	require.NoError(t, db.QueryRow(`SELECT id, args->>'stage', attempt, state, array_to_string(attempted_by, ',')
		FROM river_job WHERE id = $1`, id).Scan(&j.id, &j.stage, &j.attempt, &j.state, &by))
	j.attemptedBy = strings.Split(by, ",")
	return j
}

// riverState describes River's leader and stage jobs, for failure reports.
func riverState(db *sql.DB) string {
	var b strings.Builder
	var leader string
	var elected, expires time.Time
	if err := db.QueryRow(`SELECT leader_id, elected_at, expires_at FROM river_leader`).Scan(&leader, &elected, &expires); err != nil {
		fmt.Fprintf(&b, "leader: %v\n", err)
	} else {
		fmt.Fprintf(&b, "leader %s elected %s expires %s (now %s)\n", leader, elected.Format(time.RFC3339Nano),
			expires.Format(time.RFC3339Nano), time.Now().UTC().Format(time.RFC3339Nano))
	}
	rows, err := db.Query(`SELECT id, kind, coalesce(args->>'stage', ''), state, attempt, coalesce(array_to_string(attempted_by, ','), ''),
		coalesce(attempted_at::text, ''), scheduled_at::text FROM river_job ORDER BY id`)
	if err != nil {
		return b.String() + err.Error()
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id                                    int64
			attempt                               int
			kind, stage, state, by, at, scheduled string
		)
		if err := rows.Scan(&id, &kind, &stage, &state, &attempt, &by, &at, &scheduled); err != nil {
			return b.String() + err.Error()
		}
		fmt.Fprintf(&b, "job %d %s %s %s attempt %d by [%s] attempted %s scheduled %s\n", id, kind, stage, state, attempt, by, at, scheduled)
	}
	return b.String()
}

// pidOfClient reads the pid out of an engine process id ("host-pid-nanos").
func pidOfClient(t *testing.T, clientID string) int {
	t.Helper()
	parts := strings.Split(clientID, "-")
	require.GreaterOrEqual(t, len(parts), 3, "process id %q", clientID)
	pid, err := strconv.Atoi(parts[len(parts)-2])
	require.NoError(t, err, "process id %q", clientID)
	return pid
}

// TestCrashPostgresWorkerRescued runs an API-only serve and two workers on
// Postgres with the default liveness settings, kills with SIGKILL the worker
// that is running an evaluation, and checks that the other worker takes the
// stage over (once the dead worker's heartbeat is engine.dead_after old, the
// liveness check hands its job back) and finishes the run with no remote
// resource created twice. The kill→resume time it logs is the README's
// figure (target: under a minute).
func TestCrashPostgresWorkerRescued(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fake := nemotest.NewHandler(nemotest.Options{
		DeploymentPendingAfter: 100 * time.Millisecond,
		DeploymentReadyAfter:   300 * time.Millisecond,
		JobStartAfter:          100 * time.Millisecond,
		EpochDuration:          500 * time.Millisecond,
	})
	// Evaluations of 20 items, one request at a time, 100 ms each: about 2 s
	// per attempt, long enough to be caught running.
	hs := httptest.NewServer(slowChat(fake, 100*time.Millisecond))
	t.Cleanup(hs.Close)

	dbURL := storetest.NewPostgresDatabase(t)
	cfg := writeFile(t, filepath.Join(dir, "config.yaml"), nemoConfig(hs.URL, hs.URL+nemotest.NIMPrefix,
		"  poll_interval: 100ms\n  workers: 4\n", 1)) // liveness (heartbeat, dead_after, …) at its defaults
	dataDir := filepath.Join(dir, "data")
	common := []string{"--config", cfg, "--data-dir", dataDir, "--db", dbURL}
	out := run(t, append([]string{"migrate"}, common...)...)
	require.Contains(t, out, "applied")
	out = run(t, append([]string{"load", "--file", bfclFile(t, "simple.jsonl")}, common...)...)
	require.Contains(t, out, "Loaded 400 records")

	addr := freeAddr(t)
	apiProc := start(t, dir, "serve-api", append([]string{"serve", "--addr", addr, "--workers", "0"}, common...)...)
	workers := map[int]*child{}
	for i := range 2 {
		w := start(t, dir, fmt.Sprintf("worker-%d", i+1), append([]string{"worker"}, common...)...)
		workers[w.pid()] = w
	}
	c := newAPIClient(t, addr)
	c.waitReady(t, apiProc, 30*time.Second)

	db, err := sql.Open("pgx", dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("River at failure:\n%s", riverState(db))
		}
	})

	created := time.Now()
	id := c.createJob(t, bfclWorkload, bfclClient)
	var victim riverJob
	eventually(t, 90*time.Second, 50*time.Millisecond, "an evaluation running on a worker", func() bool {
		for _, w := range workers {
			require.False(t, w.exited(), "%s exited: %v", w.name, w.err)
		}
		var ok bool
		victim, ok = runningEvaluation(t, db)
		return ok
	})
	pid := pidOfClient(t, victim.attemptedBy[len(victim.attemptedBy)-1])
	w, ok := workers[pid]
	require.True(t, ok, "stage %s runs in pid %d, not one of the workers %v", victim.stage, pid, workers)
	w.kill(t)
	killedAt := time.Now()
	t.Logf("killed %s (pid %d) %s after the job's start, running %s (River job %d, attempt %d)",
		w.name, pid, killedAt.Sub(created).Round(time.Millisecond), victim.stage, victim.id, victim.attempt)

	// The survivor picks the stage up again once the liveness check hands it back.
	var rescued riverJob
	rescueDelay := eventually(t, 100*time.Second, 200*time.Millisecond, "the killed stage run again", func() bool {
		rescued = jobByID(t, db, victim.id)
		return rescued.attempt > victim.attempt || rescued.state == "completed"
	})
	for _, by := range rescued.attemptedBy[len(victim.attemptedBy):] {
		require.NotEqual(t, pid, pidOfClient(t, by), "the dead worker cannot run it again")
	}

	j := c.waitFinished(t, id, 3*time.Minute)
	finished := time.Now()
	requireCompleted(t, j, 2)
	eventually(t, 60*time.Second, 100*time.Millisecond, "nothing live on the fake", func() bool {
		return fake.Live().Empty()
	})
	counts := fake.Counts()
	require.Zero(t, counts.TotalDuplicates(), "duplicate creations: %v", counts.Duplicates)
	require.Equal(t, 2, counts.Created[nemotest.KindDeployment], "one deployment per candidate: %v", counts.Created)
	require.Equal(t, 2, counts.Created[nemotest.KindCustomization], "one customization per candidate: %v", counts.Created)
	t.Logf("kill→stage running again %s (attempt %d→%d, state %s), kill→run completed %s, whole run %s",
		rescueDelay.Round(time.Millisecond), victim.attempt, rescued.attempt, rescued.state,
		finished.Sub(killedAt).Round(time.Millisecond), finished.Sub(created).Round(time.Millisecond))
}

// proc is a process found in /proc.
type proc struct {
	pid        int
	ppid       int
	comm       string
	startTicks string
	args       []string
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, false
	}
	s := string(b)
	open, closeIdx := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeIdx < open {
		return proc{}, false
	}
	fields := strings.Fields(s[closeIdx+1:])
	if len(fields) < 20 || fields[0] == "Z" {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(fields[1])
	p := proc{pid: pid, ppid: ppid, comm: s[open+1 : closeIdx], startTicks: fields[19]}
	if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		p.args = strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
	}
	return p, true
}

// processes lists the live processes for which keep is true.
func processes(keep func(proc) bool) []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok && keep(p) {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether p is still the process it was (same start time).
func (p proc) alive() bool {
	q, ok := readProc(p.pid)
	return ok && q.startTicks == p.startTicks
}

func (p proc) mentions(s string) bool {
	for _, a := range p.args {
		if strings.Contains(a, s) {
			return true
		}
	}
	return false
}

func isLlamaServer(p proc) bool {
	return p.comm == "llama-server" || (len(p.args) > 0 && filepath.Base(p.args[0]) == "llama-server")
}

func isTrainer(p proc) bool { return p.mentions("trainer.py") }

// localProcs lists the llama-servers and trainers working in dataDir (every
// file they use lies under it), whoever their parent is now.
func localProcs(dataDir string) []proc {
	return processes(func(p proc) bool { return (isLlamaServer(p) || isTrainer(p)) && p.mentions(dataDir) })
}

// killStrays kills, at cleanup, every llama-server or trainer left in
// dataDir (each runs in its own process group).
func killStrays(t *testing.T, dataDir string) {
	t.Cleanup(func() {
		for _, p := range localProcs(dataDir) {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
}

func requireLocalE2E(t *testing.T) {
	t.Helper()
	if os.Getenv(localE2EEnv) != "1" {
		t.Skip(localE2EEnv + "=1 runs this test with a real llama-server and PyTorch (after scripts/install-local.sh)")
	}
	out, err := exec.Command("/usr/bin/python3", "-c", "import torch").CombinedOutput()
	require.NoError(t, err, "python3-torch is not importable (%s): run scripts/install-local.sh", out)
}

// localBundle is a serve process on the local platform with its data.
type localBundle struct {
	dir, dataDir, addr string
	common             []string
	client             *apiClient
	serve              *child
}

const demoWorkload, demoClient = "demo-assistant", "demo"

// localSetup writes a local-platform configuration, loads a small demo
// workload and starts serve.
func localSetup(t *testing.T) *localBundle {
	t.Helper()
	requireLocalE2E(t)
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(dataDir, 0o755))
	killStrays(t, dataDir)
	cfg := writeFile(t, filepath.Join(dir, "config.yaml"), `platform:
  name: local
  local:
    threads: 1
    options:
      base: random # these tests check the plumbing, not what the models learn
nims:
  - model_name: local/tiny-s
    context_length: 2048
    customization_enabled: true
    customizer_configs:
      target: local/tiny-s
      max_seq_length: 1024
  - model_name: local/tiny-m
    context_length: 2048
    customization_enabled: true
    customizer_configs:
      target: local/tiny-m
      max_seq_length: 1024
data_split_config:
  eval_size: 10
  val_ratio: 0.1
  min_total_records: 50
  limit: 120
  random_seed: 7
icl_config:
  example_selection: uniform_distribution
  max_context_length: 2048
  reserved_tokens: 768
  max_examples: 2
training_config:
  finetuning_type: all_weights
  epochs: 2
  learning_rate: 0.003
eval:
  concurrency: 2
  max_tokens: 96
logging_config:
  format: json
engine:
  poll_interval: 500ms
`)
	recs, err := demo.Records(120, 42, demoWorkload, demoClient, time.Now())
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, r := range recs {
		require.NoError(t, enc.Encode(r))
	}
	logs := writeFile(t, filepath.Join(dir, "logs.jsonl"), buf.String())
	common := []string{"--config", cfg, "--data-dir", dataDir}
	out := run(t, append([]string{"load", "--file", logs}, common...)...)
	require.Contains(t, out, "Loaded 120 records")

	b := &localBundle{dir: dir, dataDir: dataDir, addr: freeAddr(t), common: common}
	b.startServe(t, "serve-1")
	return b
}

func (b *localBundle) startServe(t *testing.T, name string) {
	t.Helper()
	b.serve = start(t, b.dir, name, append([]string{"serve", "--addr", b.addr}, b.common...)...)
	b.client = newAPIClient(t, b.addr)
	b.client.waitReady(t, b.serve, 60*time.Second)
}

// childrenOf lists the local-platform processes whose parent is pid.
func childrenOf(pid int, match func(proc) bool) []proc {
	return processes(func(p proc) bool { return p.ppid == pid && match(p) })
}

func pids(ps []proc) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.pid)
	}
	return out
}

func anyAlive(ps []proc) []int {
	var out []int
	for _, p := range ps {
		if p.alive() {
			out = append(out, p.pid)
		}
	}
	return out
}

// TestLocalKillServeLeavesNoServer kills an embedded serve with SIGKILL
// while a llama-server of its run is up and checks that the server dies
// with it (parent-death signal); after a restart the run goes on, and when
// it ends no server or trainer of it is left.
func TestLocalKillServeLeavesNoServer(t *testing.T) {
	b := localSetup(t)
	started := time.Now()
	id := b.client.createJob(t, demoWorkload, demoClient)

	var servers []proc
	eventually(t, 3*time.Minute, 50*time.Millisecond, "a llama-server child of serve", func() bool {
		require.False(t, b.serve.exited(), "serve exited: %v", b.serve.err)
		servers = childrenOf(b.serve.pid(), isLlamaServer)
		return len(servers) > 0
	})
	// Let it load its model, so that it serves when serve dies.
	time.Sleep(time.Second)
	servers = childrenOf(b.serve.pid(), func(p proc) bool { return isLlamaServer(p) || isTrainer(p) })
	t.Logf("llama-server up %s after the job's start: pids %v", time.Since(started).Round(time.Millisecond), pids(servers))
	b.serve.kill(t)
	killedAt := time.Now()
	gone := eventually(t, 5*time.Second, 20*time.Millisecond, "the run's processes gone after kill -9 of serve", func() bool {
		return len(anyAlive(servers)) == 0 && len(localProcs(b.dataDir)) == 0
	})
	t.Logf("kill -9 of serve → its %d children gone in %s", len(servers), gone.Round(time.Millisecond))

	b.startServe(t, "serve-2")
	restarted := time.Now()
	j := b.client.waitFinished(t, id, 8*time.Minute)
	finished := time.Now()
	// Cleanup runs after the run's status is final: wait for it to stop
	// every process of the run.
	eventually(t, 30*time.Second, 100*time.Millisecond, "no llama-server or trainer of the run after it ended", func() bool {
		return len(localProcs(b.dataDir)) == 0
	})
	t.Logf("after restart the run ended %s in %s (kill→restart ready %s); error: %s", j.Status,
		finished.Sub(restarted).Round(time.Second), restarted.Sub(killedAt).Round(time.Millisecond), ptrString(j.Error))
	for _, n := range j.NIMs {
		t.Logf("  %s: %s %s", n.ModelName, n.Status, ptrString(n.Error))
	}
	logStages(t, j)
	// The run goes on to the end; "completed" means at least one candidate
	// was evaluated (a run whose candidates all failed ends failed).
	require.Equal(t, "completed", j.Status, ptrString(j.Error))
}

// TestLocalCancelStopsTrainer cancels a run while the PyTorch trainer runs
// and checks that the trainer and every llama-server stop within seconds
// and that the run ends cancelled.
func TestLocalCancelStopsTrainer(t *testing.T) {
	b := localSetup(t)
	id := b.client.createJob(t, demoWorkload, demoClient)

	var trainers []proc
	eventually(t, 5*time.Minute, 50*time.Millisecond, "a trainer child of serve", func() bool {
		require.False(t, b.serve.exited(), "serve exited: %v", b.serve.err)
		trainers = childrenOf(b.serve.pid(), isTrainer)
		return len(trainers) > 0
	})
	time.Sleep(500 * time.Millisecond) // into its first steps
	all := childrenOf(b.serve.pid(), func(p proc) bool { return isLlamaServer(p) || isTrainer(p) })
	require.NotEmpty(t, childrenOf(b.serve.pid(), isTrainer), "the trainer ended before the cancel")
	cancelAt := time.Now()
	_, err := b.client.do(http.MethodPost, "/api/jobs/"+id+"/cancel", nil, nil)
	require.NoError(t, err)
	gone := map[int]time.Duration{}
	stopped := eventually(t, 15*time.Second, 20*time.Millisecond, "trainer and servers stopped after cancel", func() bool {
		for _, p := range all {
			if _, ok := gone[p.pid]; !ok && !p.alive() {
				gone[p.pid] = time.Since(cancelAt)
			}
		}
		return len(gone) == len(all) && len(localProcs(b.dataDir)) == 0
	})
	for _, p := range all {
		t.Logf("cancel → %s (pid %d) gone in %s", p.comm, p.pid, gone[p.pid].Round(time.Millisecond))
	}
	t.Logf("cancel → %d processes (%d trainer) stopped in %s", len(all), len(trainers), stopped.Round(time.Millisecond))
	require.Less(t, stopped, 10*time.Second)

	j := b.client.waitFinished(t, id, 30*time.Second)
	require.Equal(t, "cancelled", j.Status)
	for _, n := range j.NIMs {
		require.NotContains(t, []string{"deploying-nim", "running-evals"}, n.Status, "%s left active", n.ModelName)
	}
	t.Logf("cancel → run %s in %s", j.Status, time.Since(cancelAt).Round(time.Millisecond))
	require.False(t, b.serve.exited(), "serve must survive a cancel")
}
