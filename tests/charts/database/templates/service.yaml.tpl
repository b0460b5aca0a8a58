apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-headless
  labels:
    {{- include "database.labels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "database.selector" . | nindent 4 }}
  ports:
  - name: db
    port: 5432
