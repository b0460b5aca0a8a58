apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-webhook
  labels:
    app.kubernetes.io/name: webhook
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app.kubernetes.io/name: webhook, app.kubernetes.io/instance: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: webhook, app.kubernetes.io/instance: {{ .Release.Name }}}
    spec:
      containers:
      - name: webhook
        image: registry.invalid/operator-webhook:{{ .Chart.AppVersion }}
        args: [--port={{ .Values.port }}, --failure-policy={{ .Values.failurePolicy }}]
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-webhook
  labels:
    app.kubernetes.io/name: webhook
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  selector: {app.kubernetes.io/name: webhook, app.kubernetes.io/instance: {{ .Release.Name }}}
  ports:
  - port: 443
    targetPort: {{ .Values.port }}
