{{- /* Where this chart version keeps its storage settings (2.0.0 moved them to .Values.persistence). */ -}}
{{- define "database.storage" -}}
{{- toYaml .Values.storage -}}
{{- end -}}
