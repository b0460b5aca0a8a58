{{- with .Values.autoscaler }}
{{- if .enabled }}
apiVersion: {{ .apiVersion }}
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $.Release.Name }}-web
  labels:
    {{- include "app.labels" $ | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $.Release.Name }}-web
  minReplicas: {{ .minReplicas }}
  maxReplicas: {{ .maxReplicas }}
  {{- if and .targetCPUPercent (eq .apiVersion "autoscaling/v1") }}
  targetCPUUtilizationPercentage: {{ .targetCPUPercent }}
  {{- else if .targetCPUPercent }}
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: {{ .targetCPUPercent }}}
  {{- end }}
{{- end }}
{{- end }}
