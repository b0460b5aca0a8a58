{{- if .Values.cleanup.enabled }}
{{- /* A pre-delete hook that removes what the operator created. It runs before the release's objects are
       deleted, so its identity (ServiceAccount, ClusterRole, binding) is made of hooks too. */ -}}
{{- $name := printf "%s-cleanup" (include "operator.fullname" .) }}
{{- $cluster := printf "%s-%s" $name .Release.Namespace }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $name }}
  labels:
    {{- include "operator.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-delete
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $cluster }}
  labels:
    {{- include "operator.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-delete
    helm.sh/hook-weight: "-10"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
rules:
- apiGroups: [{{ .Release.Namespace }}.ops.helmops.test]
  resources: [backups]
  verbs: [list, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $cluster }}
  labels:
    {{- include "operator.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-delete
    helm.sh/hook-weight: "-5"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $cluster }}
subjects:
- kind: ServiceAccount
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
---
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ $name }}
  labels:
    {{- include "operator.labels" . | nindent 4 }}
  annotations:
    helm.sh/hook: pre-delete
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
        {{- with .Values.cleanup.behaviour }}
        helmops.test/behaviour: {{ . }}
        {{- end }}
    spec:
      serviceAccountName: {{ $name }}
      restartPolicy: Never
      containers:
      - name: cleanup
        image: registry.invalid/operator:{{ .Chart.AppVersion }}
        args: [cleanup, --all-namespaces]
{{- end }}
