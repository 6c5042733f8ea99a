{{/* Helpers of the PostgreSQL side: its host, URL, Secret, password env vars and tables. */}}

{{/*
"true" when the chart deploys its own PostgreSQL (externalPostgresql.host unset), else "".
*/}}
{{- define "ticket-pipeline.postgresql.enabled" -}}
{{- if not .Values.externalPostgresql.host -}}true{{- end -}}
{{- end -}}

{{/*
Host the clients connect to: the external PostgreSQL's, or the chart's client Service (the name
its generated certificate is made for).
*/}}
{{- define "ticket-pipeline.postgresqlHost" -}}
{{- if include "ticket-pipeline.postgresql.enabled" . -}}
{{- include "ticket-pipeline.serviceHost" (dict "root" . "service" (include "ticket-pipeline.componentName" "postgresql")) -}}
{{- else -}}
{{- .Values.externalPostgresql.host -}}
{{- end -}}
{{- end -}}

{{/*
Port the clients connect to.
*/}}
{{- define "ticket-pipeline.postgresqlPort" -}}
{{- if include "ticket-pipeline.postgresql.enabled" . -}}5432{{- else -}}{{ .Values.externalPostgresql.port | int64 }}{{- end -}}
{{- end -}}

{{/*
Name of the ConfigMap holding the CA the clients trust, or "" (none: plain TCP, or the external
server's certificate checked against the images' system CAs).
*/}}
{{- define "ticket-pipeline.postgresql.caConfigMap" -}}
{{- if include "ticket-pipeline.postgresql.enabled" . -}}
{{- if .Values.postgresql.tls.enabled -}}
{{- .Values.postgresql.tls.caConfigMap | default (include "ticket-pipeline.componentName" "postgresql-ca") -}}
{{- end -}}
{{- else -}}
{{- .Values.externalPostgresql.caConfigMap -}}
{{- end -}}
{{- end -}}

{{/*
Key of the CA in that ConfigMap.
*/}}
{{- define "ticket-pipeline.postgresql.caKey" -}}
{{- if include "ticket-pipeline.postgresql.enabled" . -}}{{ .Values.postgresql.tls.caKey }}{{- else -}}{{ .Values.externalPostgresql.caKey }}{{- end -}}
{{- end -}}

{{/*
libpq's TLS and authentication settings of every PostgreSQL client container, as env vars that
libpq reads itself (psql, pg_isready and psycopg2 alike): sslmode, the CA file (or "system"),
and require_auth, so that no client sends its password to a server that did not prove its name
or that asks for the password in clear.
*/}}
{{- define "ticket-pipeline.postgresql.clientTlsEnv" -}}
{{- $sslMode := "disable" -}}
{{- if include "ticket-pipeline.postgresql.enabled" . -}}
{{- if .Values.postgresql.tls.enabled }}{{ $sslMode = "verify-full" }}{{ end -}}
{{- else -}}
{{- $sslMode = .Values.externalPostgresql.sslMode -}}
{{- end -}}
- name: PGSSLMODE
  value: {{ $sslMode | quote }}
{{- if include "ticket-pipeline.postgresql.caConfigMap" . }}
- name: PGSSLROOTCERT
  value: {{ printf "/etc/postgresql-ca/%s" (include "ticket-pipeline.postgresql.caKey" .) | quote }}
{{- else if hasPrefix "verify-" $sslMode }}
- name: PGSSLROOTCERT
  value: system
{{- end }}
- name: PGREQUIREAUTH
  value: {{ .Values.postgresql.auth.requireAuth | quote }}
{{- end -}}

{{/*
The CA's volume mount (a list item) in a PostgreSQL client container, or nothing.
*/}}
{{- define "ticket-pipeline.postgresql.caVolumeMount" -}}
{{- if include "ticket-pipeline.postgresql.caConfigMap" . -}}
- name: postgresql-ca
  mountPath: /etc/postgresql-ca
  readOnly: true
{{- end -}}
{{- end -}}

{{/*
The CA's volume (a list item), or nothing: only the CA's key of the ConfigMap.
*/}}
{{- define "ticket-pipeline.postgresql.caVolume" -}}
{{- if include "ticket-pipeline.postgresql.caConfigMap" . -}}
{{- $key := include "ticket-pipeline.postgresql.caKey" . -}}
- name: postgresql-ca
  configMap:
    name: {{ include "ticket-pipeline.postgresql.caConfigMap" . | quote }}
    items:
      - key: {{ $key | quote }}
        path: {{ $key | quote }}
{{- end -}}
{{- end -}}

{{/*
Checks of the TLS and external-server values the schema cannot express. Renders nothing; fails
the install otherwise.
*/}}
{{- define "ticket-pipeline.postgresql.checkTls" -}}
{{- if and .Values.postgresql.tls.existingSecret (not .Values.postgresql.tls.caConfigMap) -}}
{{- fail (printf "postgresql.tls.caConfigMap is required with postgresql.tls.existingSecret (%q): the clients verify the server's certificate against that CA" .Values.postgresql.tls.existingSecret) -}}
{{- end -}}
{{- if and (not (include "ticket-pipeline.postgresql.enabled" .)) (not .Values.postgresql.auth.existingSecret) -}}
{{- fail (printf "postgresql.auth.existingSecret is required with externalPostgresql.host (%q): it holds the password of the owner that your server already has, and the writer's and the reader's" .Values.externalPostgresql.host) -}}
{{- end -}}
{{- end -}}

{{/*
libpq connection URL of the pipeline's database as one role, without the password (PGPASSWORD
carries it). The migrate Job connects as the owner (auth.username), the Spark jobs as the writer
(auth.writerUsername), the dashboard as the reader (auth.readerUsername).
Usage: {{ include "ticket-pipeline.databaseUrl" (dict "root" $ "user" $.Values.postgresql.auth.writerUsername) }}
*/}}
{{- define "ticket-pipeline.databaseUrl" -}}
{{- printf "postgresql://%s@%s:%s/%s" .user (include "ticket-pipeline.postgresqlHost" .root) (include "ticket-pipeline.postgresqlPort" .root) .root.Values.postgresql.auth.database -}}
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
{{- if and (eq $auth.username "postgres") (include "ticket-pipeline.postgresql.enabled" .) -}}
{{- fail "postgresql.auth.username must not be postgres: that is the postgres image's superuser, and the owner of the pipeline's database is a role without SUPERUSER" -}}
{{- end -}}
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
{{- if has $keys.adminPasswordKey (list $keys.userPasswordKey $keys.writerPasswordKey $keys.readerPasswordKey) -}}
{{- fail (printf "postgresql.auth.secretKeys.adminPasswordKey must differ from the three other keys (it is %q): the superuser has its own password" $keys.adminPasswordKey) -}}
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
