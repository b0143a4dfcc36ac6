// Package helm_test renders the flywheel chart with Helm's Go SDK (no
// cluster) for the value sets in values/, and decodes every manifest
// strictly into the Kubernetes API types: an unknown or misplaced field
// fails the test.
package helm_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/flywheel-go/flywheel/internal/config"
)

// serviceMonitor is the part of the Prometheus operator's
// monitoring.coreos.com/v1 ServiceMonitor the chart writes.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			Authorization *struct {
				Type        string                   `json:"type"`
				Credentials corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one render: its objects by "Kind/name".
type rendered struct {
	objects map[string]any
	notes   string
}

func (r rendered) names() []string {
	var ns []string
	for k := range r.objects {
		ns = append(ns, k)
	}
	sort.Strings(ns)
	return ns
}

func get[T any](t *testing.T, r rendered, key string) *T {
	t.Helper()
	o, ok := r.objects[key]
	require.True(t, ok, "rendered %s; have %v", key, r.names())
	v, ok := o.(*T)
	require.True(t, ok, "%s has type %T", key, o)
	return v
}

// render renders the chart with the values file (empty: the chart's
// defaults) and extra values, as "helm install fw -n flywheel" would.
func render(t *testing.T, valuesFile string, extra map[string]any) (rendered, error) {
	t.Helper()
	ch, err := loader.Load("flywheel")
	require.NoError(t, err)
	vals := map[string]any{}
	if valuesFile != "" {
		b, err := os.ReadFile(filepath.Join("values", valuesFile))
		require.NoError(t, err)
		vals, err = chartutil.ReadValues(b)
		require.NoError(t, err)
	}
	vals = chartutil.CoalesceTables(extra, vals)
	top, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: "fw", Namespace: "flywheel", Revision: 1, IsInstall: true}, chartutil.DefaultCapabilities)
	require.NoError(t, err)
	files, err := engine.Render(ch, top)
	if err != nil {
		return rendered{}, err
	}
	r := rendered{objects: map[string]any{}}
	for name, body := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.notes = body
			continue
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(body, -1) {
			if strings.TrimSpace(doc) == "" || isComment(doc) {
				continue
			}
			obj, key := decode(t, fmt.Sprintf("%s#%d", name, i), []byte(doc))
			_, dup := r.objects[key]
			require.False(t, dup, "%s rendered twice", key)
			r.objects[key] = obj
		}
	}
	return r, nil
}

func isComment(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// decode decodes one manifest strictly into its API type.
func decode(t *testing.T, where string, doc []byte) (any, string) {
	t.Helper()
	var tm metav1.TypeMeta
	require.NoError(t, yaml.Unmarshal(doc, &tm), where)
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "v1 PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "apps/v1 StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "batch/v1 Job":
		obj = &batchv1.Job{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "networking.k8s.io/v1 Ingress":
		obj = &networkingv1.Ingress{}
	case "networking.k8s.io/v1 NetworkPolicy":
		obj = &networkingv1.NetworkPolicy{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		obj = &serviceMonitor{}
	default:
		t.Fatalf("%s: unexpected object %s %s", where, tm.APIVersion, tm.Kind)
	}
	require.NoError(t, yaml.UnmarshalStrict(doc, obj), "%s: %s", where, doc)
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	require.NoError(t, yaml.Unmarshal(doc, &meta))
	require.NotEmpty(t, meta.Metadata.Name, where)
	require.Equal(t, "fw", meta.Metadata.Labels["app.kubernetes.io/instance"], "%s carries the release label", where)
	return obj, tm.Kind + "/" + meta.Metadata.Name
}

// checkConfig loads the ConfigMap's config.yaml with flywheel's own loader
// and validator, with the environment the pods get.
func checkConfig(t *testing.T, r rendered, dbURL string) *config.Config {
	t.Helper()
	cm := get[corev1.ConfigMap](t, r, "ConfigMap/fw-flywheel")
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cm.Data["config.yaml"]), 0o600))
	// The pods set FLYWHEEL_DATA_DIR=/data, as the file does.
	env := map[string]string{"FLYWHEEL_DATA_DIR": "/data", "FLYWHEEL_DATABASE_URL": dbURL, "HOME": t.TempDir()}
	cfg, err := config.Load(path, func(k string) string { return env[k] })
	require.NoError(t, err, "config.yaml:\n%s", cm.Data["config.yaml"])
	require.NoError(t, cfg.Validate(), "config.yaml:\n%s", cm.Data["config.yaml"])
	require.Equal(t, "0.0.0.0:8000", cfg.Server.Addr)
	require.True(t, cfg.Server.AuthEnabled(), "a pod listens beyond loopback: auth is on")
	require.Contains(t, cfg.Server.AllowedHosts, "fw-flywheel.flywheel.svc.cluster.local")
	return cfg
}

// checkPod checks what every flywheel pod must have.
func checkPod(t *testing.T, name string, spec corev1.PodSpec, image string) {
	t.Helper()
	require.NotNil(t, spec.SecurityContext, name)
	require.True(t, *spec.SecurityContext.RunAsNonRoot, name)
	require.EqualValues(t, 65532, *spec.SecurityContext.RunAsUser, name)
	require.False(t, *spec.AutomountServiceAccountToken, name)
	for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
		require.Equal(t, image, c.Image, name)
		require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem, "%s/%s", name, c.Name)
		require.False(t, *c.SecurityContext.AllowPrivilegeEscalation, "%s/%s", name, c.Name)
		require.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop, "%s/%s", name, c.Name)
		require.NotEmpty(t, c.Resources.Requests, "%s/%s has resources", name, c.Name)
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
		}
		require.Contains(t, mounts, "/tmp", "%s/%s: a writable /tmp on a read-only root", name, c.Name)
	}
}

func env(c corev1.Container) map[string]corev1.EnvVar {
	m := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		m[e.Name] = e
	}
	return m
}

// handBack is the longest graceful stop of a flywheel process: 10 s for
// the HTTP server, then up to 30 s for the engine to hand stages back.
const handBack = 40

func TestChartMinimal(t *testing.T) {
	r, err := render(t, "minimal.yaml", nil)
	require.NoError(t, err)
	t.Logf("minimal renders %v", r.names())
	require.Equal(t, []string{
		"ConfigMap/fw-flywheel", "Deployment/fw-flywheel-api", "Deployment/fw-flywheel-worker", "Job/fw-flywheel-migrate-1",
		"NetworkPolicy/fw-flywheel", "PersistentVolumeClaim/fw-flywheel-data", "PodDisruptionBudget/fw-flywheel-api",
		"PodDisruptionBudget/fw-flywheel-worker", "Service/fw-flywheel", "ServiceAccount/fw-flywheel",
	}, r.names())
	cfg := checkConfig(t, r, "postgres://u:p@db:5432/flywheel")
	require.Equal(t, "nemo", cfg.Platform.Name)

	api := get[appsv1.Deployment](t, r, "Deployment/fw-flywheel-api")
	checkPod(t, "api", api.Spec.Template.Spec, "flywheel:0.1.0")
	require.EqualValues(t, 2, *api.Spec.Replicas)
	c := api.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"serve", "--workers", "0"}, c.Args)
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, "/healthz", c.StartupProbe.HTTPGet.Path)
	require.Greater(t, *api.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(handBack))
	e := env(c)
	require.Equal(t, "flywheel-db", e["FLYWHEEL_DATABASE_URL"].ValueFrom.SecretKeyRef.Name)
	require.Equal(t, "url", e["FLYWHEEL_DATABASE_URL"].ValueFrom.SecretKeyRef.Key)
	require.Equal(t, "/etc/flywheel/config.yaml", e["FLYWHEEL_CONFIG"].Value)
	require.Equal(t, "flywheel-keys", c.EnvFrom[0].SecretRef.Name)

	w := get[appsv1.Deployment](t, r, "Deployment/fw-flywheel-worker")
	checkPod(t, "worker", w.Spec.Template.Spec, "flywheel:0.1.0")
	require.EqualValues(t, 2, *w.Spec.Replicas)
	require.Equal(t, []string{"worker", "--workers", "8"}, w.Spec.Template.Spec.Containers[0].Args)
	require.Greater(t, *w.Spec.Template.Spec.TerminationGracePeriodSeconds, int64(handBack))
	require.Equal(t, api.Spec.Template.Annotations["checksum/config"], w.Spec.Template.Annotations["checksum/config"])

	job := get[batchv1.Job](t, r, "Job/fw-flywheel-migrate-1")
	require.Equal(t, "pre-install,pre-upgrade", job.Annotations["helm.sh/hook"])
	checkPod(t, "migrate", job.Spec.Template.Spec, "flywheel:0.1.0")
	require.Equal(t, []string{"migrate"}, job.Spec.Template.Spec.Containers[0].Args)
	require.Equal(t, "flywheel-db", env(job.Spec.Template.Spec.Containers[0])["FLYWHEEL_DATABASE_URL"].ValueFrom.SecretKeyRef.Name)

	// A later stage reads the run files an earlier one wrote, on any worker, and the API deletes
	// them: every pod mounts the same ReadWriteMany claim.
	pvc := get[corev1.PersistentVolumeClaim](t, r, "PersistentVolumeClaim/fw-flywheel-data")
	require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, pvc.Spec.AccessModes)
	for _, spec := range []corev1.PodSpec{api.Spec.Template.Spec, w.Spec.Template.Spec} {
		require.Equal(t, "fw-flywheel-data", dataClaim(spec))
	}

	pdb := get[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget/fw-flywheel-api")
	require.EqualValues(t, 1, pdb.Spec.MinAvailable.IntValue())
	np := get[networkingv1.NetworkPolicy](t, r, "NetworkPolicy/fw-flywheel")
	require.Len(t, np.Spec.Ingress, 1)
	require.Equal(t, "http", np.Spec.Ingress[0].Ports[0].Port.String())
	require.Contains(t, r.notes, "tokens create")
	require.Empty(t, cfg.Server.Auth.TokensFile)
	for _, spec := range []corev1.PodSpec{api.Spec.Template.Spec, w.Spec.Template.Spec} {
		for _, v := range spec.Volumes {
			require.NotEqual(t, "tokens", v.Name, "no tokens Secret: nothing mounted")
		}
	}
}

// checkTokensSecret checks that every pod that reads the config (API,
// worker, and the single mode's init container) mounts the tokens Secret's key read-only where server.auth.tokens_file
// points, as a whole volume (a subPath mount would never see a rotation),
// and that the notes explain it.
func checkTokensSecret(t *testing.T, r rendered, name, key string) {
	t.Helper()
	specs := map[string]corev1.PodSpec{}
	for _, d := range []string{"Deployment/fw-flywheel-api", "Deployment/fw-flywheel-worker"} {
		if _, ok := r.objects[d]; ok {
			specs[d] = get[appsv1.Deployment](t, r, d).Spec.Template.Spec
		}
	}
	if _, ok := r.objects["Job/fw-flywheel-migrate-1"]; ok {
		// The migrations hook reads no config: it needs only the database Secret.
		for _, v := range get[batchv1.Job](t, r, "Job/fw-flywheel-migrate-1").Spec.Template.Spec.Volumes {
			require.NotEqual(t, "tokens", v.Name)
		}
	}
	require.NotEmpty(t, specs)
	for where, spec := range specs {
		var vol *corev1.Volume
		for i := range spec.Volumes {
			if spec.Volumes[i].Name == "tokens" {
				vol = &spec.Volumes[i]
			}
		}
		require.NotNil(t, vol, "%s mounts the tokens Secret", where)
		require.NotNil(t, vol.Secret, where)
		require.Equal(t, name, vol.Secret.SecretName, where)
		require.Equal(t, []corev1.KeyToPath{{Key: key, Path: "tokens"}}, vol.Secret.Items, where)
		require.EqualValues(t, 0o440, *vol.Secret.DefaultMode, where)
		for _, c := range append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...) {
			var found bool
			for _, m := range c.VolumeMounts {
				if m.Name == "tokens" {
					found = true
					require.Equal(t, "/etc/flywheel-tokens", m.MountPath, "%s/%s", where, c.Name)
					require.True(t, m.ReadOnly, "%s/%s", where, c.Name)
					require.Empty(t, m.SubPath, "%s/%s: a subPath mount is never updated", where, c.Name)
				}
			}
			require.True(t, found, "%s/%s mounts tokens", where, c.Name)
		}
	}
	require.Contains(t, r.notes, "API tokens come from the Secret "+name+", key "+key)
	require.Contains(t, r.notes, "openssl rand -hex 32")
	require.NotContains(t, r.notes, "exec deploy/")
}

// The single-host mode (local platform) takes the tokens Secret too, with
// its own key name.
func TestChartTokensSecretSingle(t *testing.T) {
	r, err := render(t, "local.yaml", map[string]any{"auth": map[string]any{"tokensSecret": map[string]any{"name": "my-tokens", "key": "api-tokens"}}})
	require.NoError(t, err)
	cfg := checkConfig(t, r, "")
	require.Equal(t, "/etc/flywheel-tokens/tokens", cfg.Server.Auth.TokensFile)
	checkTokensSecret(t, r, "my-tokens", "api-tokens")
}

func TestChartProduction(t *testing.T) {
	r, err := render(t, "production.yaml", nil)
	require.NoError(t, err)
	t.Logf("production renders %v", r.names())
	require.Equal(t, []string{
		"ConfigMap/fw-flywheel", "Deployment/fw-flywheel-api", "Deployment/fw-flywheel-worker", "Ingress/fw-flywheel",
		"Job/fw-flywheel-migrate-1", "NetworkPolicy/fw-flywheel", "PersistentVolumeClaim/fw-flywheel-data",
		"PodDisruptionBudget/fw-flywheel-api", "PodDisruptionBudget/fw-flywheel-worker", "Service/fw-flywheel",
		"ServiceAccount/fw-flywheel", "ServiceMonitor/fw-flywheel",
	}, r.names())
	cfg := checkConfig(t, r, "postgres://u:p@db:5432/flywheel")
	require.Len(t, cfg.NIMs, 2)
	require.Contains(t, cfg.Server.AllowedHosts, "flywheel.example.com")
	require.Equal(t, "/etc/flywheel-tokens/tokens", cfg.Server.Auth.TokensFile)
	checkTokensSecret(t, r, "flywheel-tokens", "tokens")
	require.Contains(t, r.notes, "The ServiceMonitor sends the secret under key token of the same Secret")
	t.Logf("notes:\n%s", r.notes)

	api := get[appsv1.Deployment](t, r, "Deployment/fw-flywheel-api")
	checkPod(t, "api", api.Spec.Template.Spec, "registry.example.com/flywheel:0.1.0")
	require.EqualValues(t, 3, *api.Spec.Replicas)
	require.Equal(t, "postgres-url", env(api.Spec.Template.Spec.Containers[0])["FLYWHEEL_DATABASE_URL"].ValueFrom.SecretKeyRef.Key)
	w := get[appsv1.Deployment](t, r, "Deployment/fw-flywheel-worker")
	require.EqualValues(t, 6, *w.Spec.Replicas)
	require.Equal(t, []string{"worker", "--workers", "4"}, w.Spec.Template.Spec.Containers[0].Args)

	ing := get[networkingv1.Ingress](t, r, "Ingress/fw-flywheel")
	require.Equal(t, "nginx", *ing.Spec.IngressClassName)
	require.Equal(t, []string{"flywheel.example.com"}, ing.Spec.TLS[0].Hosts)
	require.Equal(t, "flywheel-tls", ing.Spec.TLS[0].SecretName)
	require.Equal(t, "fw-flywheel", ing.Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name)

	sm := get[serviceMonitor](t, r, "ServiceMonitor/fw-flywheel")
	require.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)
	// The ServiceMonitor's read token is the "token" key of the tokens Secret.
	require.Equal(t, "flywheel-tokens", sm.Spec.Endpoints[0].Authorization.Credentials.Name)
	require.Equal(t, "token", sm.Spec.Endpoints[0].Authorization.Credentials.Key)
	require.Equal(t, "prometheus", sm.Labels["release"])
	require.Equal(t, "api", sm.Spec.Selector.MatchLabels["app.kubernetes.io/component"])
	np := get[networkingv1.NetworkPolicy](t, r, "NetworkPolicy/fw-flywheel")
	require.Len(t, np.Spec.Ingress[0].From, 2)
}

func TestChartLocalPlatform(t *testing.T) {
	r, err := render(t, "local.yaml", nil)
	require.NoError(t, err)
	t.Logf("local renders %v", r.names())
	require.Equal(t, []string{
		"ConfigMap/fw-flywheel", "Deployment/fw-flywheel-api", "NetworkPolicy/fw-flywheel",
		"PersistentVolumeClaim/fw-flywheel-data", "Service/fw-flywheel", "ServiceAccount/fw-flywheel",
	}, r.names())
	cfg := checkConfig(t, r, "")
	require.Equal(t, "local", cfg.Platform.Name)
	require.Equal(t, "/data", cfg.DataDir)

	d := get[appsv1.Deployment](t, r, "Deployment/fw-flywheel-api")
	spec := d.Spec.Template.Spec
	checkPod(t, "single", spec, "flywheel-local:0.1.0")
	require.EqualValues(t, 1, *d.Spec.Replicas)
	require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
	require.Len(t, spec.InitContainers, 1)
	require.Equal(t, []string{"migrate"}, spec.InitContainers[0].Args)
	require.Equal(t, []string{"serve", "--workers", "2"}, spec.Containers[0].Args)
	_, hasDB := env(spec.Containers[0])["FLYWHEEL_DATABASE_URL"]
	require.False(t, hasDB, "SQLite in the data dir")
	require.Equal(t, "fw-flywheel-data", dataClaim(spec))
	pvc := get[corev1.PersistentVolumeClaim](t, r, "PersistentVolumeClaim/fw-flywheel-data")
	require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, pvc.Spec.AccessModes)
}

// dataClaim is the claim mounted as the pod's data volume ("" for none).
func dataClaim(spec corev1.PodSpec) string {
	for _, v := range spec.Volumes {
		if v.Name == "data" && v.PersistentVolumeClaim != nil {
			return v.PersistentVolumeClaim.ClaimName
		}
	}
	return ""
}

func TestChartBundledPostgres(t *testing.T) {
	r, err := render(t, "", map[string]any{"postgresql": map[string]any{"enabled": true},
		"dataVolume": map[string]any{"emptyDir": true}})
	require.NoError(t, err)
	t.Logf("bundled postgres renders %v", r.names())
	sec := get[corev1.Secret](t, r, "Secret/fw-flywheel-postgresql")
	require.Contains(t, sec.StringData["url"], "@fw-flywheel-postgresql:5432/flywheel")
	get[appsv1.StatefulSet](t, r, "StatefulSet/fw-flywheel-postgresql")
	get[networkingv1.NetworkPolicy](t, r, "NetworkPolicy/fw-flywheel-postgresql")
	job := get[batchv1.Job](t, r, "Job/fw-flywheel-migrate-1")
	require.Empty(t, job.Annotations["helm.sh/hook"], "the bundled database does not exist before install: no hook")
	checkConfig(t, r, sec.StringData["url"])
	_, hasClaim := r.objects["PersistentVolumeClaim/fw-flywheel-data"]
	require.False(t, hasClaim, "dataVolume.emptyDir: no claim")
	require.Empty(t, dataClaim(get[appsv1.Deployment](t, r, "Deployment/fw-flywheel-worker").Spec.Template.Spec))
}

func TestChartRefusesBadValues(t *testing.T) {
	for name, tc := range map[string]struct {
		file  string
		extra map[string]any
		want  string
	}{
		"no database":              {"", nil, "database.existingSecret"},
		"bad mode":                 {"minimal.yaml", map[string]any{"mode": "both"}, "mode must be cluster or single"},
		"ingress without hosts":    {"minimal.yaml", map[string]any{"ingress": map[string]any{"enabled": true}}, "ingress.hosts"},
		"service monitor no token": {"minimal.yaml", map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}}, "tokenSecret"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := render(t, tc.file, tc.extra)
			require.ErrorContains(t, err, tc.want)
		})
	}
}
