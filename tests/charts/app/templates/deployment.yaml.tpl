apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
  labels:
    {{- include "app.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
  progressDeadlineSeconds: {{ .Values.progressDeadlineSeconds }}
  selector:
    matchLabels:
      {{- include "app.labels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "app.labels" . | nindent 8 }}
        {{- with .Values.behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
      annotations:
        helmops.test/revision-note: {{ .Values.revisionNote | quote }}
    spec:
      containers:
      - name: web
        image: registry.invalid/web:{{ .Chart.AppVersion }}
