{{- if .Values.widget }}
apiVersion: example.helmops.test/v1
kind: Widget
metadata:
  name: {{ .Release.Name }}-widget
  labels:
    {{- include "app.labels" . | nindent 4 }}
spec:
  size: 1
{{- end }}
