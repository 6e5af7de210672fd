{{/* Name of every object the chart creates: "coder" unless nameOverride. */}}
{{- define "coder.name" -}}
{{ default "coder" .Values.nameOverride }}
{{- end }}

{{/* Labels that pick this release's coder pods (Deployment selector, Service selector). */}}
{{- define "coder.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coder.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "coder.labels" -}}
{{ include "coder.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.coder.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "coder.serviceAccountName" -}}
{{- if .Values.coder.serviceAccount.name }}
{{- .Values.coder.serviceAccount.name }}
{{- else }}
{{- include "coder.name" . }}
{{- end }}
{{- end }}
