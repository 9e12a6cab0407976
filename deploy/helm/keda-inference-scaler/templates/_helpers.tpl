{{/* Names, labels and small computed values shared by the templates. */}}

{{- define "kis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kis.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kis.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "kis.labels" -}}
helm.sh/chart: {{ include "kis.chart" . | quote }}
{{ include "kis.selectorLabels" . }}
{{- /* The version the pod runs: the image's tag when one is set (it was the chart's appVersion whatever ran). */}}
app.kubernetes.io/version: {{ toString (default .Chart.AppVersion .Values.image.tag) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: external-scaler
app.kubernetes.io/part-of: keda
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- with .Values.commonLabels }}
{{- include "kis.ownLabelKeys" (dict "values" . "name" "commonLabels") }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Fails when `values` (a label map named `name`) sets a label the chart sets itself: the keys
     would be there twice, and a selector label changed would no longer select the pods. */}}
{{- define "kis.ownLabelKeys" -}}
{{- range $key, $_ := .values }}
{{- if has $key (list "helm.sh/chart" "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/version" "app.kubernetes.io/component" "app.kubernetes.io/part-of" "app.kubernetes.io/managed-by") }}
{{- fail (printf "%s sets %s, which the chart sets itself: leave it out" $.name $key) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kis.image" -}}
{{- /* toString: a tag written as a number (`tag: 8`) is one in the values. */}}
{{- $tag := toString (default .Chart.AppVersion .Values.image.tag) }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Where kubelet's gRPC probes go: the plaintext health port when the main port speaks TLS. */}}
{{- define "kis.probePort" -}}
{{- if .Values.tls.enabled }}{{ .Values.tls.healthPort }}{{ else }}{{ .Values.service.grpcPort }}{{ end }}
{{- end }}

{{- define "kis.clientCASecret" -}}
{{- default .Values.tls.secretName .Values.tls.clientCA.secretName }}
{{- end }}

{{/* The address ScaledObjects use in scalerAddress. */}}
{{- define "kis.scalerAddress" -}}
{{- printf "%s.%s.svc.%s:%v" (include "kis.fullname" .) .Release.Namespace .Values.clusterDomain .Values.service.grpcPort }}
{{- end }}

{{/* Whether the replicas share a state store (STATE_STORE_URL is set). */}}
{{- define "kis.sharedState" -}}
{{- if or .Values.stateStore.url .Values.stateStore.existingSecret .Values.valkey.enabled }}true{{ end }}
{{- end }}

{{- define "kis.valkeyName" -}}
{{- printf "%s-valkey" (include "kis.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/* Its own name label: the scaler's Service, PDB and spread select by kis.selectorLabels, never Valkey. */}}
{{- define "kis.valkeySelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-valkey" (include "kis.name" . | trunc 56 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{- define "kis.valkeyLabels" -}}
helm.sh/chart: {{ include "kis.chart" . | quote }}
{{ include "kis.valkeySelectorLabels" . }}
app.kubernetes.io/version: {{ toString .Values.valkey.image.tag | quote }}
app.kubernetes.io/component: state-store
app.kubernetes.io/part-of: keda
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "kis.valkeyImage" -}}
{{- if .Values.valkey.image.digest }}
{{- printf "%s@%s" .Values.valkey.image.repository .Values.valkey.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.valkey.image.repository (toString .Values.valkey.image.tag) }}
{{- end }}
{{- end }}

{{/* The scaler's STATE_STORE_* variables (src/config.ts): none keeps state in each process. */}}
{{- define "kis.stateStoreEnv" -}}
{{- $store := .Values.stateStore }}
{{- if .Values.valkey.enabled }}
- name: STATE_STORE_URL
  value: {{ printf "redis://%s.%s.svc.%s:6379" (include "kis.valkeyName" .) .Release.Namespace .Values.clusterDomain | quote }}
{{- with .Values.valkey.existingSecret }}
- name: STATE_STORE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . | quote }}
      key: {{ $.Values.valkey.passwordKey | quote }}
{{- end }}
{{- else }}
{{- if $store.url }}
- name: STATE_STORE_URL
  value: {{ $store.url | quote }}
{{- else if $store.existingSecret }}
- name: STATE_STORE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $store.existingSecret | quote }}
      key: {{ $store.urlKey | quote }}
{{- end }}
{{- if $store.existingSecret }}
- name: STATE_STORE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $store.existingSecret | quote }}
      key: {{ $store.passwordKey | quote }}
      optional: true
{{- end }}
{{- if $store.tls.caSecret }}
- name: STATE_STORE_TLS_CA_FILE
  value: {{ printf "/etc/keda-inference-scaler/state-store-ca/%s" $store.tls.caKey | quote }}
{{- end }}
{{- if $store.cluster }}
- name: STATE_STORE_CLUSTER
  value: "true"
{{- end }}
{{- with $store.sentinel.masterName }}
- name: STATE_STORE_SENTINEL_MASTER
  value: {{ . | quote }}
{{- if $store.existingSecret }}
- name: STATE_STORE_SENTINEL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $store.existingSecret | quote }}
      key: {{ $store.sentinel.passwordKey | quote }}
      optional: true
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A quantity from the values as a string: a number in a values file is a float64, whose toString is
an exponent (2.097152e+08), so whole numbers are printed as such; anything else as it is.
*/}}
{{- define "kis.quantity" -}}
{{- ternary (printf "%.0f" (float64 .)) (toString .) (kindIs "float64" .) }}
{{- end }}

{{/*
A memory quantity in MiB, as a decimal string: plain bytes or a binary (Ki, Mi, Gi, Ti) or decimal
(k, M, G, T) suffix. Empty for a form it does not read (an exponent), which the caller skips.
*/}}
{{- define "kis.memoryMiB" -}}
{{- $q := include "kis.quantity" . }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q }}
{{- $number := float64 (regexReplaceAll "[A-Za-z]+$" $q "") }}
{{- $unit := regexReplaceAll "^[0-9.]+" $q "" }}
{{- $bytes := dict "" 1.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 }}
{{- divf (mulf $number (get $bytes $unit)) 1048576.0 }}
{{- end }}
{{- end }}

{{/*
Fails, naming the values, where a container's memory request is above its limit (Kubernetes
refuses the pod) or a limit is written in millibytes ("300m": meant 300Mi). `.resources` is the
container's resources, `.key` where they are in the values.
*/}}
{{- define "kis.checkMemory" -}}
{{- $quantity := dict }}
{{- range $kind := list "requests" "limits" }}
{{- $q := dig $kind "memory" "" $.resources }}
{{- $q = include "kis.quantity" $q }}
{{- if regexMatch "^[0-9.]+m$" $q }}
{{- fail (printf "%s.%s.memory %s is in millibytes (m): write Mi (or M)" $.key $kind $q) }}
{{- end }}
{{- $_ := set $quantity $kind $q }}
{{- end }}
{{- $requestMiB := include "kis.memoryMiB" $quantity.requests }}
{{- $limitMiB := include "kis.memoryMiB" $quantity.limits }}
{{- if and $requestMiB $limitMiB (gt (float64 $requestMiB) (float64 $limitMiB)) }}
{{- fail (printf "%s.requests.memory %s is above %s.limits.memory %s: Kubernetes refuses such a pod" $.key $quantity.requests $.key $quantity.limits) }}
{{- end }}
{{- end }}

{{/* A Prometheus duration (1m30s, 1d, 500ms; the Operator's CRD pattern) in milliseconds. */}}
{{- define "kis.durationMs" -}}
{{- $ms := dict "y" 31536000000 "w" 604800000 "d" 86400000 "h" 3600000 "m" 60000 "s" 1000 "ms" 1 }}
{{- $total := 0 }}
{{- range regexFindAll "[0-9]+(ms|[ywdhms])" (toString .) -1 }}
{{- $n := regexFind "^[0-9]+" . }}
{{- $total = add $total (mul (int64 $n) (get $ms (trimPrefix $n .))) }}
{{- end }}
{{- $total }}
{{- end }}

{{/* A Valkey/Redis memory setting ("192mb", "1gb", "500000000") in MiB, as a float; empty when unreadable. */}}
{{- define "kis.redisMemoryMiB" -}}
{{- $q := lower (toString .) }}
{{- if regexMatch "^[0-9]+(b|k|kb|m|mb|g|gb)?$" $q }}
{{- $number := float64 (regexReplaceAll "[a-z]+$" $q "") }}
{{- $unit := regexReplaceAll "^[0-9]+" $q "" }}
{{- $bytes := dict "" 1.0 "b" 1.0 "k" 1000.0 "kb" 1024.0 "m" 1000000.0 "mb" 1048576.0 "g" 1000000000.0 "gb" 1073741824.0 }}
{{- divf (mulf $number (get $bytes $unit)) 1048576.0 }}
{{- end }}
{{- end }}

{{/* The variables the chart sets from its values; extraEnv and secretEnv may not set them again. */}}
{{- define "kis.env" -}}
{{- with .Values.nodeHeapMb }}
- name: NODE_OPTIONS
  value: {{ printf "--max-old-space-size=%d" (int64 .) | quote }}
{{- end }}
- name: GRPC_PORT
  value: {{ .Values.service.grpcPort | int64 | quote }}
- name: METRICS_PORT
  value: {{ .Values.service.metricsPort | int64 | quote }}
- name: LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: CACHE_TTL_MS
  value: {{ .Values.config.cacheTtlMs | int64 | quote }}
- name: SOURCE_TIMEOUT_MS
  value: {{ .Values.config.sourceTimeoutMs | int64 | quote }}
- name: STREAM_INTERVAL_MS
  value: {{ .Values.config.streamIntervalMs | int64 | quote }}
- name: GRPC_MAX_CONNECTION_AGE_MS
  value: {{ .Values.config.grpcMaxConnectionAgeMs | int64 | quote }}
- name: GRPC_MAX_RECEIVE_MESSAGE_BYTES
  value: {{ .Values.config.grpcMaxReceiveMessageBytes | int64 | quote }}
- name: GRPC_MAX_OPEN_STREAMS
  value: {{ .Values.config.grpcMaxOpenStreams | int64 | quote }}
- name: LOOP_TARGET_UTILIZATION
  value: {{ .Values.config.loopTargetUtilization | toString | quote }}
- name: SHUTDOWN_TIMEOUT_MS
  value: {{ .Values.config.shutdownTimeoutMs | int64 | quote }}
- name: STATE_RETENTION_MS
  value: {{ .Values.config.stateRetentionMs | int64 | quote }}
- name: TRIGGER_METRICS
  value: {{ .Values.config.triggerMetrics | toString | quote }}
- name: CONFIG_FILE
  value: /etc/keda-inference-scaler/config/config.yaml
{{- with include "kis.stateStoreEnv" . }}
{{ . }}
{{- end }}
{{- if .Values.tls.enabled }}
- name: TLS_CERT_FILE
  value: /etc/keda-inference-scaler/tls/{{ .Values.tls.certKey }}
- name: TLS_KEY_FILE
  value: /etc/keda-inference-scaler/tls/{{ .Values.tls.keyKey }}
- name: HEALTH_PORT
  value: {{ .Values.tls.healthPort | int64 | quote }}
{{- if .Values.tls.clientCA.enabled }}
- name: TLS_CLIENT_CA_FILE
  value: /etc/keda-inference-scaler/client-ca/{{ .Values.tls.clientCA.key }}
{{- end }}
{{- end }}
{{- end }}
