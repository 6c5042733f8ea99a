{{/* Helpers of the dashboard: the Secret of its page's password and the env that reads it. */}}

{{/*
Name of the Secret holding the dashboard page's password: the user's dashboard.auth.existingSecret,
or the Secret `dashboard` that the chart generates once.
*/}}
{{- define "ticket-pipeline.dashboard.secretName" -}}
{{- .Values.dashboard.auth.existingSecret | default (include "ticket-pipeline.componentName" "dashboard") -}}
{{- end -}}

{{/*
The page's HTTP basic authentication: DASHBOARD_USER plain, DASHBOARD_PASSWORD from the Secret.
The pods listen on 0.0.0.0 (BIND_HOST), where the dashboard refuses to start without both.
*/}}
{{- define "ticket-pipeline.dashboard.authEnv" -}}
- name: DASHBOARD_USER
  value: {{ .Values.dashboard.auth.username | quote }}
- name: DASHBOARD_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "ticket-pipeline.dashboard.secretName" . }}
      key: {{ .Values.dashboard.auth.secretKeys.passwordKey }}
{{- end -}}
