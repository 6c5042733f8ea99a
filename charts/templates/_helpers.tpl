{{/*
Name of the chart, used by the app.kubernetes.io/name label.
Truncated to 63 characters because some Kubernetes name fields are limited to that (DNS-1123).
*/}}
{{- define "ticket-pipeline.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Chart name and version, used by the helm.sh/chart label.
*/}}
{{- define "ticket-pipeline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Name of a component's resources, e.g. "redpanda" or "producer".
Names are fixed (they do not carry the release name) so that the README's kubectl commands are
exact; the price is one release per namespace. Truncated to 63 characters.
Usage: {{ include "ticket-pipeline.componentName" "redpanda" }}
*/}}
{{- define "ticket-pipeline.componentName" -}}
{{- . | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Standard labels of every resource: helm.sh/chart and app.kubernetes.io/*, plus commonLabels.
Usage: {{ include "ticket-pipeline.labels" (dict "root" $ "component" "redpanda") }}
*/}}
{{- define "ticket-pipeline.labels" -}}
helm.sh/chart: {{ include "ticket-pipeline.chart" .root }}
{{ include "ticket-pipeline.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: {{ include "ticket-pipeline.name" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels of a component: the immutable subset of the standard labels that Services and
workloads select pods by.
Usage: {{ include "ticket-pipeline.selectorLabels" (dict "root" $ "component" "redpanda") }}
*/}}
{{- define "ticket-pipeline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ticket-pipeline.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Full image reference "registry/repository:tag" of an image block of values; an empty tag means
the chart's appVersion (our own images), an empty registry means none (images kind-loaded).
Usage: {{ include "ticket-pipeline.image" (dict "image" .Values.producer.image "root" $) }}
*/}}
{{- define "ticket-pipeline.image" -}}
{{- $tag := .image.tag | default .root.Chart.AppVersion | toString -}}
{{- if .image.registry -}}
{{- printf "%s/%s:%s" .image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
Fully qualified DNS name of a Service of this release: <service>.<namespace>.svc.<clusterDomain>.
Usage: {{ include "ticket-pipeline.serviceHost" (dict "root" $ "service" "redpanda") }}
*/}}
{{- define "ticket-pipeline.serviceHost" -}}
{{- printf "%s.%s.svc.%s" .service .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/*
"true" when the chart deploys its own Redpanda broker, "" when externalKafka.bootstrapServers
names one the user runs (then no Redpanda object is rendered).
Usage: {{- if include "ticket-pipeline.redpanda.enabled" . }}
*/}}
{{- define "ticket-pipeline.redpanda.enabled" -}}
{{- if not .Values.externalKafka.bootstrapServers -}}true{{- end -}}
{{- end -}}

{{/*
Kafka bootstrap servers of every client (producer, Spark drivers, topic Job, Console):
externalKafka.bootstrapServers when set, else the Redpanda client Service on the Kafka port
(9092). Redpanda advertises that same address, so clients never need the pod's own DNS name.
*/}}
{{- define "ticket-pipeline.kafkaBootstrap" -}}
{{- if include "ticket-pipeline.redpanda.enabled" . -}}
{{- printf "%s:9092" (include "ticket-pipeline.serviceHost" (dict "root" . "service" (include "ticket-pipeline.componentName" "redpanda"))) -}}
{{- else -}}
{{- .Values.externalKafka.bootstrapServers -}}
{{- end -}}
{{- end -}}

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
Pod-level security context of our pods: non-root, with the runtime's default seccomp profile.
Usage: {{ include "ticket-pipeline.podSecurityContext" 185 }}  (the image's UID, also GID and fsGroup)
*/}}
{{- define "ticket-pipeline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Container-level security context: no privilege escalation, no capabilities, read-only root
filesystem (writable paths are emptyDir or PVC mounts).
*/}}
{{- define "ticket-pipeline.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
{{- end -}}

{{/*
The components that serve Prometheus metrics: the producer and each enabled Spark job, with the
port of their `metrics` container port and, for a Spark driver, its UI port (Spark's own metrics).
Returns JSON {"targets": [{"component", "metricsPort", "uiPort" (0: none)}, ...]} for fromJson.
Usage: {{ range (include "ticket-pipeline.metricsTargets" $ | fromJson).targets }}
*/}}
{{- define "ticket-pipeline.metricsTargets" -}}
{{- $targets := list }}
{{- if .Values.producer.enable }}
{{- $targets = append $targets (dict "component" "producer" "metricsPort" (.Values.producer.metricsPort | int64) "uiPort" 0) }}
{{- end }}
{{- if .Values.spark.enable }}
{{- range $app := list "enrichment" "aggregation" }}
{{- $values := index $.Values.spark $app }}
{{- if $values.enable }}
{{- $targets = append $targets (dict "component" $app "metricsPort" ($values.metricsPort | int64) "uiPort" ($values.uiPort | int64)) }}
{{- end }}
{{- end }}
{{- end }}
{{- dict "targets" $targets | toJson -}}
{{- end -}}

{{/*
What a PodMonitor or ServiceMonitor scrapes on one metrics target: the `metrics` port and, on a
Spark driver, Spark's own metrics on the UI port (Spark names that container port spark-ui).
Usage: {{ include "ticket-pipeline.metricsEndpoints" (dict "target" $target "interval" "15s") }}
*/}}
{{- define "ticket-pipeline.metricsEndpoints" -}}
- port: metrics
  path: /metrics
  interval: {{ .interval }}
{{- if .target.uiPort }}
- port: spark-ui
  path: /metrics/prometheus
  interval: {{ .interval }}
- port: spark-ui
  path: /metrics/executors/prometheus
  interval: {{ .interval }}
{{- end }}
{{- end -}}
