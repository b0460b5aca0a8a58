{{- with .Values.statefulSet }}
{{- if .enabled }}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $.Release.Name }}-db
  labels:
    {{- include "app.labels" $ | nindent 4 }}
spec:
  serviceName: {{ $.Release.Name }}-db
  replicas: {{ .replicas }}
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: {{ .whenDeleted }}
    whenScaled: Retain
  selector:
    matchLabels:
      {{- include "app.labels" $ | nindent 6 }}
      app.kubernetes.io/component: db
  template:
    metadata:
      labels:
        {{- include "app.labels" $ | nindent 8 }}
        app.kubernetes.io/component: db
        {{- with .behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
    spec:
      containers:
      - name: db
        image: registry.invalid/db:{{ $.Chart.AppVersion }}
        volumeMounts:
        {{- range .claims }}
        - name: {{ . }}
          mountPath: /var/lib/{{ . }}
        {{- end }}
  volumeClaimTemplates:
  {{- range .claims }}
  - metadata:
      name: {{ . }}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
  {{- end }}
{{- end }}
{{- end }}
