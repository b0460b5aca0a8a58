{{- /* Where this chart version keeps its storage settings (1.0.0 had them in .Values.storage): rendering
       it with 1.0.0's values (helm upgrade --reuse-values) fails at template time, as real charts do. */ -}}
{{- define "database.storage" -}}
{{- $persistence := .Values.persistence -}}
size: {{ required "persistence.size is required" $persistence.size }}
storageClass: {{ $persistence.storageClass | toJson }}
whenDeleted: {{ $persistence.whenDeleted | default "Retain" }}
{{- end -}}
