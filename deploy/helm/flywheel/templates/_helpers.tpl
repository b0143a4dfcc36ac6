{{- define "flywheel.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flywheel.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "flywheel.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flywheel.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "flywheel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "flywheel.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "flywheel.dbSecret" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else if .Values.postgresql.enabled -}}
{{- printf "%s-postgresql" (include "flywheel.fullname" .) -}}
{{- else if eq .Values.mode "cluster" -}}
{{- fail "cluster mode needs a database: set database.existingSecret (a Secret with the PostgreSQL URL) or postgresql.enabled=true to try the chart" -}}
{{- end -}}
{{- end -}}

{{- define "flywheel.dbSecretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}url{{- end -}}
{{- end -}}

{{/* The environment of every flywheel container. */}}
{{- define "flywheel.env" -}}
- name: FLYWHEEL_CONFIG
  value: /etc/flywheel/config.yaml
- name: FLYWHEEL_DATA_DIR
  value: /data
{{- if ne .Values.mode "single" }}
- name: FLYWHEEL_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "flywheel.dbSecret" . }}
      key: {{ include "flywheel.dbSecretKey" . }}
{{- end }}
{{- end -}}

{{- define "flywheel.envFrom" -}}
{{- if .Values.secrets.existingSecret }}
envFrom:
  - secretRef:
      name: {{ .Values.secrets.existingSecret }}
{{- end }}
{{- end -}}

{{/* The volumes of every flywheel pod: config, /tmp, /data. */}}
{{- define "flywheel.volumes" -}}
- name: config
  configMap:
    name: {{ include "flywheel.fullname" . }}
- name: tmp
  emptyDir: {}
{{- with .Values.auth.tokensSecret.name }}
# The whole volume, not a subPath: the kubelet then updates a rotated Secret in place.
- name: tokens
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - key: {{ $.Values.auth.tokensSecret.key }}
        path: tokens
{{- end }}
- name: data
{{- if eq .Values.mode "single" }}
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim | default (printf "%s-data" (include "flywheel.fullname" .)) }}
{{- else if .Values.dataVolume.emptyDir }}
  emptyDir: {}
{{- else }}
  persistentVolumeClaim:
    claimName: {{ .Values.dataVolume.existingClaim | default (printf "%s-data" (include "flywheel.fullname" .)) }}
{{- end }}
{{- end -}}

{{- define "flywheel.volumeMounts" -}}
- name: config
  mountPath: /etc/flywheel
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if .Values.auth.tokensSecret.name }}
- name: tokens
  mountPath: {{ include "flywheel.tokensDir" . }}
  readOnly: true
{{- end }}
- name: data
  mountPath: /data
{{- end -}}

{{- define "flywheel.tokensDir" -}}/etc/flywheel-tokens{{- end -}}

{{/* The config file: the values' config with the keys the chart owns. */}}
{{- define "flywheel.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $server := get $cfg "server" | default dict -}}
{{- $hosts := get $server "allowed_hosts" | default list -}}
{{- $name := include "flywheel.fullname" . -}}
{{- $hosts = concat $hosts (list $name (printf "%s.%s" $name .Release.Namespace) (printf "%s.%s.svc" $name .Release.Namespace) (printf "%s.%s.svc.cluster.local" $name .Release.Namespace)) -}}
{{- range .Values.ingress.hosts }}{{ $hosts = append $hosts .host }}{{ end -}}
{{- $_ := set $server "allowed_hosts" (uniq $hosts) -}}
{{- if .Values.auth.tokensSecret.name -}}
{{- $auth := get $server "auth" | default dict -}}
{{- $_ := set $auth "tokens_file" (printf "%s/tokens" (include "flywheel.tokensDir" .)) -}}
{{- $_ = set $server "auth" $auth -}}
{{- end -}}
{{- $_ = set $server "addr" (printf "0.0.0.0:%v" .Values.service.port) -}}
{{- $_ = set $cfg "server" $server -}}
{{- $_ = set $cfg "data_dir" "/data" -}}
{{- toYaml $cfg -}}
{{- end -}}
