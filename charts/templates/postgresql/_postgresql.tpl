{{/* Helpers of the PostgreSQL side: its host, URL, Secret, password env vars and tables. */}}

{{/*
Host of the PostgreSQL client Service.
*/}}
{{- define "ticket-pipeline.postgresqlHost" -}}
{{- include "ticket-pipeline.serviceHost" (dict "root" . "service" (include "ticket-pipeline.componentName" "postgresql")) -}}
{{- end -}}

{{/*
libpq connection URL of the pipeline's database as one role, without the password (PGPASSWORD
carries it). The migrate Job connects as the owner (auth.username), the Spark jobs as the writer
(auth.writerUsername), the dashboard as the reader (auth.readerUsername).
Usage: {{ include "ticket-pipeline.databaseUrl" (dict "root" $ "user" $.Values.postgresql.auth.writerUsername) }}
*/}}
{{- define "ticket-pipeline.databaseUrl" -}}
{{- printf "postgresql://%s@%s:5432/%s" .user (include "ticket-pipeline.postgresqlHost" .root) .root.Values.postgresql.auth.database -}}
{{- end -}}

{{/*
Name of the Secret holding the PostgreSQL passwords (the owner's, the writer's, the reader's): the user's
existingSecret, or the Secret `postgresql` that the chart generates once.
*/}}
{{- define "ticket-pipeline.postgresql.secretName" -}}
{{- .Values.postgresql.auth.existingSecret | default (include "ticket-pipeline.componentName" "postgresql") -}}
{{- end -}}

{{/*
An env var read from a key of the PostgreSQL Secret, e.g. PGPASSWORD (libpq and psql pick it up
by themselves) or DATABASE_WRITER_PASSWORD (the migrate Job).
Usage: {{ include "ticket-pipeline.secretEnv" (dict "root" $ "name" "PGPASSWORD" "key" $.Values.postgresql.auth.secretKeys.writerPasswordKey) }}
*/}}
{{- define "ticket-pipeline.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "ticket-pipeline.postgresql.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/*
PGPASSWORD of the database owner (the migrate Job only).
*/}}
{{- define "ticket-pipeline.ownerPasswordEnv" -}}
{{- include "ticket-pipeline.secretEnv" (dict "root" . "name" "PGPASSWORD" "key" .Values.postgresql.auth.secretKeys.userPasswordKey) -}}
{{- end -}}

{{/*
PGPASSWORD of the writer role (the Spark drivers, their wait-for-schema and the helm test).
*/}}
{{- define "ticket-pipeline.writerPasswordEnv" -}}
{{- include "ticket-pipeline.secretEnv" (dict "root" . "name" "PGPASSWORD" "key" .Values.postgresql.auth.secretKeys.writerPasswordKey) -}}
{{- end -}}

{{/*
Checks the schema cannot express: the owner, the writer and the reader are three roles (migrate
sets the writer's and the reader's passwords and grants; on a shared role they would overwrite
each other), and the three passwords live under three keys. Renders nothing; fails the install
otherwise.
*/}}
{{- define "ticket-pipeline.postgresql.checkAuth" -}}
{{- $auth := .Values.postgresql.auth -}}
{{- $keys := $auth.secretKeys -}}
{{- if eq $auth.writerUsername $auth.username -}}
{{- fail (printf "postgresql.auth.writerUsername must differ from postgresql.auth.username (both are %q): the Spark jobs must not connect as the owner" $auth.username) -}}
{{- end -}}
{{- if eq $auth.readerUsername $auth.username -}}
{{- fail (printf "postgresql.auth.readerUsername must differ from postgresql.auth.username (both are %q): the dashboard must not connect as the owner" $auth.username) -}}
{{- end -}}
{{- if eq $auth.readerUsername $auth.writerUsername -}}
{{- fail (printf "postgresql.auth.readerUsername must differ from postgresql.auth.writerUsername (both are %q): the dashboard must not connect as the Spark jobs' role" $auth.writerUsername) -}}
{{- end -}}
{{- if eq $keys.writerPasswordKey $keys.userPasswordKey -}}
{{- fail (printf "postgresql.auth.secretKeys.writerPasswordKey must differ from userPasswordKey (both are %q): the owner and the writer have their own passwords" $keys.userPasswordKey) -}}
{{- end -}}
{{- if has $keys.readerPasswordKey (list $keys.userPasswordKey $keys.writerPasswordKey) -}}
{{- fail (printf "postgresql.auth.secretKeys.readerPasswordKey must differ from userPasswordKey and writerPasswordKey (it is %q): each role has its own password" $keys.readerPasswordKey) -}}
{{- end -}}
{{- end -}}

{{/*
The PostgreSQL tables the Spark jobs write (core.contract.TABLES; tests/k8s compare them), as a
space-separated list; the first one holds every valid ticket.
*/}}
{{- define "ticket-pipeline.tables" -}}
tickets tickets_rejected tickets_aggregation
{{- end -}}

{{/*
Every table the Spark jobs insert into (core.migrations.WRITER_PRIVILEGES): a driver waits until
the writer role may insert into each, so that it never starts on an older schema.
*/}}
{{- define "ticket-pipeline.writerTables" -}}
tickets tickets_rejected tickets_aggregation tickets_aggregation_seen tickets_staged tickets_aggregation_staged sink_commits
{{- end -}}
