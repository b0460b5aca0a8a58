{{- if .Values.migrations.enabled }}
{{- /* A pre-upgrade hook with its own identity: hooks are created before the release's objects, so its
       ServiceAccount, Role and RoleBinding are hooks too (lower weights run first). */ -}}
{{- $hook := dict "helm.sh/hook" "pre-upgrade" "helm.sh/hook-delete-policy" "before-hook-creation" }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ .Release.Name }}-migrate
  labels:
    {{- include "database.labels" . | nindent 4 }}
  annotations:
    {{- toYaml (merge (dict "helm.sh/hook-weight" "-10") $hook) | nindent 4 }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .Release.Name }}-migrate
  labels:
    {{- include "database.labels" . | nindent 4 }}
  annotations:
    {{- toYaml (merge (dict "helm.sh/hook-weight" "-10") $hook) | nindent 4 }}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .Release.Name }}-migrate
  labels:
    {{- include "database.labels" . | nindent 4 }}
  annotations:
    {{- toYaml (merge (dict "helm.sh/hook-weight" "-5") $hook) | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .Release.Name }}-migrate
subjects:
- kind: ServiceAccount
  name: {{ .Release.Name }}-migrate
  namespace: {{ .Release.Namespace }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  labels:
    {{- include "database.labels" . | nindent 4 }}
  annotations:
    {{- toYaml (merge (dict "helm.sh/hook-weight" "0") $hook) | nindent 4 }}
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        {{- include "database.selector" . | nindent 8 }}
        {{- with .Values.migrations.behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
    spec:
      serviceAccountName: {{ .Release.Name }}-migrate
      restartPolicy: Never
      containers:
      - name: migrate
        image: {{ include "database.image" . }}
        args: [migrate, --to, {{ .Chart.AppVersion | quote }}]
{{- end }}
