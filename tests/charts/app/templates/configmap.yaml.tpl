apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
  labels:
    {{- include "app.labels" . | nindent 4 }}
data:
  note: {{ .Values.revisionNote | quote }}
  {{- range $key, $value := .Values.rawConfig }}
  {{ $key }}: {{ $value }}
  {{- end }}
{{- if .Values.secretToken }}
---
apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}-credentials
  labels:
    {{- include "app.labels" . | nindent 4 }}
stringData:
  token: {{ .Values.secretToken | quote }}
{{- end }}
{{- if .Values.keptConfig }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-kept
  labels:
    {{- include "app.labels" . | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
data:
  kept: "true"
{{- end }}
{{- if .Values.paddingKiB }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-padding
  labels:
    {{- include "app.labels" . | nindent 4 }}
data:
  {{- range $i := until (int .Values.paddingKiB) }}
  chunk{{ $i }}: {{ randAlphaNum 1024 | quote }}
  {{- end }}
{{- end }}
