{{- range $i, $hook := .Values.hooks }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $.Release.Name }}-{{ $hook.event }}
  labels:
    {{- include "app.labels" $ | nindent 4 }}
  annotations:
    helm.sh/hook: {{ $hook.event }}
    helm.sh/hook-weight: "{{ $i }}"
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        {{- include "app.labels" $ | nindent 8 }}
        {{- with $hook.behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
    spec:
      restartPolicy: Never
      containers:
      - name: hook
        image: registry.invalid/hook:1
{{- end }}
