{{/*
Helpers of the rauta chart. The templates use only these functions:
include, toYaml, quote, default, required, contains, indent, nindent,
trunc, trimSuffix, trimAll, lower, regexReplaceAll and the text/template
built-ins; deploy/helm/chart_test.go renders the chart with exactly that
set.
*/}}

{{/* The chart name, for the app.kubernetes.io/name label. */}}
{{- define "rauta.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The full name of the release's objects: the release name when it already
contains the chart name (helm install rauta ... gives "rauta", the name the
plain manifests use), else "<release>-rauta".
*/}}
{{- define "rauta.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "rauta.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" }}
{{ include "rauta.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels selecting the release's pods. */}}
{{- define "rauta.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rauta.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rauta.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "rauta.fullname" .) -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rauta.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
