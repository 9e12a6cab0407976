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
app.kubernetes.io/name: {{ include "kis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kis.labels" -}}
helm.sh/chart: {{ include "kis.chart" . }}
{{ include "kis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: external-scaler
app.kubernetes.io/part-of: keda
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
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
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
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
