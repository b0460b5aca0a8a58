apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "database.configName" . }}
  labels:
    {{- include "database.labels" . | nindent 4 }}
data:
  max_connections: {{ .Values.config.maxConnections | quote }}
  shared_buffers: {{ .Values.config.sharedBuffers | quote }}
  fsync: {{ ternary "on" "off" .Values.config.fsync | quote }}
  checkpoint_completion_target: {{ .Values.config.checkpointRatio | quote }}
  {{- with .Values.config.logLevel }}
  log_min_messages: {{ . | quote }}
  {{- end }}
