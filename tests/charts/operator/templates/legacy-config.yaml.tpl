{{- if .Values.legacyConfig.enabled }}
{{- /* Settings the operator read before 0.3; kept by policy, so removing it from the values leaves it in the
       cluster (Helm skips deleting kept objects on upgrade too): the leftover the triage must find. */}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "operator.fullname" . }}-legacy
  labels:
    {{- include "operator.labels" . | nindent 4 }}
  annotations:
    helm.sh/resource-policy: keep
data:
  sync-period: {{ .Values.manager.syncPeriodSeconds | quote }}
{{- end }}
