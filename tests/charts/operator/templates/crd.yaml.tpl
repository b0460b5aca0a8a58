apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  {{- /* One API group per namespace, so that the test releases of parallel workers never contend for one CRD;
         a real chart has one group. */}}
  name: backups.{{ .Release.Namespace }}.ops.helmops.test
  labels:
    {{- include "operator.labels" . | nindent 4 }}
  {{- if .Values.crds.keep }}
  annotations:
    helm.sh/resource-policy: keep
  {{- end }}
spec:
  group: {{ .Release.Namespace }}.ops.helmops.test
  names: {kind: Backup, plural: backups, singular: backup}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
