{{- if .Values.widget }}
apiVersion: {{ .Values.widgetApiVersion }}
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
  labels:
    {{- include "app.labels" . | nindent 4 }}
spec:
  size: 1
{{- end }}
