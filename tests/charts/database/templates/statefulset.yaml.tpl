{{- $storage := include "database.storage" . | fromYaml }}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}
  labels:
    {{- include "database.labels" . | nindent 4 }}
spec:
  serviceName: {{ .Release.Name }}-headless
  replicas: {{ .Values.replicaCount }}
  # Zero values as production charts render them; the API server returns none of them.
  minReadySeconds: 0
  persistentVolumeClaimRetentionPolicy:
    whenDeleted: {{ $storage.whenDeleted }}
    whenScaled: Retain
  selector:
    matchLabels:
      {{- include "database.selector" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "database.selector" . | nindent 8 }}
        {{- with .Values.behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml.tpl") . | sha256sum }}
    spec:
      hostNetwork: false
      containers:
      - name: db
        image: {{ include "database.image" . }}
        ports:
        - {name: db, containerPort: 5432}
        env:
        - {name: DB_USER, value: {{ .Values.auth.username | quote }}}
        {{- if .Values.auth.existingSecret }}
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: {{ .Values.auth.existingSecret }}, key: password}}
        {{- end }}
        envFrom:
        - configMapRef: {name: {{ include "database.configName" . }}}
        resources:
          {{- toYaml .Values.resources | nindent 10 }}
        volumeMounts:
        - {name: data, mountPath: /var/lib/db, subPath: ""}
        {{- if .Values.backup.enabled }}
        - {name: backup, mountPath: /backup}
        {{- end }}
      {{- if .Values.backup.enabled }}
      volumes:
      - name: backup
        persistentVolumeClaim: {claimName: {{ .Release.Name }}-backup}
      {{- end }}
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      {{- with $storage.storageClass }}
      storageClassName: {{ . }}
      {{- end }}
      resources:
        requests:
          storage: {{ $storage.size }}
