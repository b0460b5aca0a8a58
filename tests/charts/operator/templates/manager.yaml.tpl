apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "operator.fullname" . }}
  labels:
    {{- include "operator.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ .Chart.Name }}
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ .Chart.Name }}
        app.kubernetes.io/instance: {{ .Release.Name }}
        {{- with .Values.behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "operator.fullname" . }}
      containers:
      - name: manager
        image: registry.invalid/operator:{{ .Chart.AppVersion }}
        args:
        - --log-level={{ .Values.manager.logLevel }}
        - --leader-elect={{ .Values.manager.leaderElection }}
        - --sync-period={{ .Values.manager.syncPeriodSeconds }}s
        {{- with .Values.manager.watchNamespace }}
        - --namespace={{ . }}
        {{- end }}
