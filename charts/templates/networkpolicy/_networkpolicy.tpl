{{/* Helpers of the NetworkPolicies: who may talk to whom, on which ports (networkpolicies.yaml). */}}

{{/*
The ports the Spark pods listen on besides their UI and metrics, as the SparkApplications set
them: the driver's RPC (spark.driver.port, 7078 by default on Kubernetes), the driver's block
manager (spark.driver.blockManager.port, else spark.blockManager.port) and each executor's block
manager (spark.blockManager.port, which the chart sets: Spark's default is a random port, which
no NetworkPolicy could open). spark.sparkConf may set each of them; 0 (random) fails the install
while networkPolicy.enable is true.
Returns JSON {"driver", "driverBlockManager", "blockManager"} for fromJson.
Usage: {{ $ports := include "ticket-pipeline.spark.ports" $ | fromJson }}
*/}}
{{- define "ticket-pipeline.spark.ports" -}}
{{- $conf := .Values.spark.sparkConf -}}
{{- $blockManager := index $conf "spark.blockManager.port" | default "7079" | int64 -}}
{{- $ports := dict
      "driver" (index $conf "spark.driver.port" | default "7078" | int64)
      "driverBlockManager" (index $conf "spark.driver.blockManager.port" | default (toString $blockManager) | int64)
      "blockManager" $blockManager -}}
{{- if .Values.networkPolicy.enable -}}
{{- range $name, $port := $ports -}}
{{- if not $port -}}
{{- fail (printf "networkPolicy.enable needs fixed Spark ports: spark.sparkConf sets the %s port to 0 (random), which no NetworkPolicy can open" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $ports | toJson -}}
{{- end -}}

{{/*
The pods of this release: what the default deny and the DNS policy select.
*/}}
{{- define "ticket-pipeline.networkPolicy.releaseSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ include "ticket-pipeline.name" . }}
  app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/*
A pod selector of one component, and of one Spark role ("driver" or "executor") when given.
Usage: {{ include "ticket-pipeline.networkPolicy.podSelector" (dict "root" $ "component" "enrichment" "role" "driver") }}
*/}}
{{- define "ticket-pipeline.networkPolicy.podSelector" -}}
matchLabels:
  {{- include "ticket-pipeline.selectorLabels" . | nindent 2 }}
  {{- with .role }}
  spark-role: {{ . }}
  {{- end }}
{{- end -}}

{{/*
Peers (a list of NetworkPolicyPeer) of the pods of some components of this release, in its
namespace. Each item of .peers is a dict {"component", "role" (optional)}.
Usage: {{ include "ticket-pipeline.networkPolicy.peers" (dict "root" $ "peers" (list (dict "component" "producer"))) }}
*/}}
{{- define "ticket-pipeline.networkPolicy.peers" -}}
{{- range $index, $peer := .peers }}
{{- if $index }}{{ "\n" }}{{ end -}}
- podSelector:
    {{- include "ticket-pipeline.networkPolicy.podSelector" (dict "root" $.root "component" $peer.component "role" ($peer.role | default "")) | nindent 4 }}
{{- end }}
{{- end -}}

{{/*
The enabled Spark applications of the release, as a JSON list of names for fromJson
({"apps": [...]}).
*/}}
{{- define "ticket-pipeline.networkPolicy.sparkApps" -}}
{{- $apps := list -}}
{{- if .Values.spark.enable -}}
{{- range $app := list "enrichment" "aggregation" -}}
{{- if (index $.Values.spark $app).enable -}}
{{- $apps = append $apps $app -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "apps" $apps | toJson -}}
{{- end -}}

{{/*
The Kafka clients of the pipeline: producer, topic Job, dashboard, Console, and the drivers and
executors of each Spark job (the executors read the topic). With the chart's Redpanda, Redpanda
too: its own HTTP proxy and schema registry are Kafka clients of the broker's address. As
{"peers": [{"component", "role"}, ...]} for fromJson.
*/}}
{{- define "ticket-pipeline.networkPolicy.kafkaClients" -}}
{{- $peers := list (dict "component" "kafka-topic") -}}
{{- if .Values.producer.enable }}{{ $peers = append $peers (dict "component" "producer") }}{{ end -}}
{{- if .Values.dashboard.enable }}{{ $peers = append $peers (dict "component" "dashboard") }}{{ end -}}
{{- if .Values.console.enable }}{{ $peers = append $peers (dict "component" "console") }}{{ end -}}
{{- range (include "ticket-pipeline.networkPolicy.sparkApps" . | fromJson).apps }}
{{- $peers = append $peers (dict "component" .) -}}
{{- end -}}
{{- if include "ticket-pipeline.redpanda.enabled" . }}{{ $peers = append $peers (dict "component" "redpanda") }}{{ end -}}
{{- dict "peers" $peers | toJson -}}
{{- end -}}

{{/*
The PostgreSQL clients of the pipeline: the migrate Job, the helm test, the dashboard, and the
drivers (their wait-for-schema too) and executors (jobs/staged_sink.py) of each Spark job. As
{"peers": [{"component"}, ...]} for fromJson.
*/}}
{{- define "ticket-pipeline.networkPolicy.postgresqlClients" -}}
{{- $peers := list (dict "component" "postgresql-migrate") (dict "component" "test") -}}
{{- if .Values.dashboard.enable }}{{ $peers = append $peers (dict "component" "dashboard") }}{{ end -}}
{{- range (include "ticket-pipeline.networkPolicy.sparkApps" . | fromJson).apps }}
{{- $peers = append $peers (dict "component" .) -}}
{{- end -}}
{{- dict "peers" $peers | toJson -}}
{{- end -}}

{{/*
The TCP ports of the external broker: networkPolicy.externalKafka.ports, else those of
externalKafka.bootstrapServers (the schema makes each entry host:port), each once. As
{"ports": [...]} for fromJson.
*/}}
{{- define "ticket-pipeline.networkPolicy.externalKafkaPorts" -}}
{{- $ports := list -}}
{{- if .Values.networkPolicy.externalKafka.ports -}}
{{- range .Values.networkPolicy.externalKafka.ports }}{{ $ports = append $ports (int64 .) }}{{ end -}}
{{- else -}}
{{- range splitList "," .Values.externalKafka.bootstrapServers -}}
{{- $ports = append $ports (regexFind ":[0-9]+$" (trim .) | trimPrefix ":" | int64) -}}
{{- end -}}
{{- end -}}
{{- dict "ports" ($ports | uniq) | toJson -}}
{{- end -}}

{{/*
The egress rule (a list item) of a Kafka client: to the chart's Redpanda on its Kafka port, or
to the external broker's ports, at networkPolicy.externalKafka.to (none: any address).
*/}}
{{- define "ticket-pipeline.networkPolicy.kafkaEgress" -}}
{{- if include "ticket-pipeline.redpanda.enabled" . -}}
- to:
    - podSelector:
        {{- include "ticket-pipeline.networkPolicy.podSelector" (dict "root" . "component" "redpanda") | nindent 8 }}
  ports:
    - protocol: TCP
      port: 9092
{{- else -}}
- ports:
    {{- range (include "ticket-pipeline.networkPolicy.externalKafkaPorts" . | fromJson).ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
  {{- with .Values.networkPolicy.externalKafka.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
The egress rule (a list item) of a PostgreSQL client: to the chart's PostgreSQL on 5432, or to
externalPostgresql's port, at networkPolicy.externalPostgresql.to (none: any address).
*/}}
{{- define "ticket-pipeline.networkPolicy.postgresqlEgress" -}}
{{- if include "ticket-pipeline.postgresql.enabled" . -}}
- to:
    - podSelector:
        {{- include "ticket-pipeline.networkPolicy.podSelector" (dict "root" . "component" "postgresql") | nindent 8 }}
  ports:
    - protocol: TCP
      port: 5432
{{- else -}}
- ports:
    - protocol: TCP
      port: {{ include "ticket-pipeline.postgresqlPort" . }}
  {{- with .Values.networkPolicy.externalPostgresql.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
{{- end -}}

{{/*
An ingress rule (a list item) that opens ports to networkPolicy.<key>.from, or nothing when that
list is empty (an ingress rule without `from` would admit every source).
Usage: {{ include "ticket-pipeline.networkPolicy.ingressFrom" (dict "from" $.Values.networkPolicy.ui.from "ports" (list 8080)) }}
*/}}
{{- define "ticket-pipeline.networkPolicy.ingressFrom" -}}
{{- if and .from .ports -}}
- from:
    {{- toYaml .from | nindent 4 }}
  ports:
    {{- range .ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
{{- end -}}
{{- end -}}

{{/*
Metadata, pod selector and policy types of one NetworkPolicy of a component's pods.
Usage: {{ include "ticket-pipeline.networkPolicy.head" (dict "root" $ "name" "enrichment-driver" "component" "enrichment" "role" "driver") }}
*/}}
{{- define "ticket-pipeline.networkPolicy.head" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "ticket-pipeline.componentName" .name }}
  labels:
    {{- include "ticket-pipeline.labels" (dict "root" .root "component" .component) | nindent 4 }}
spec:
  podSelector:
    {{- include "ticket-pipeline.networkPolicy.podSelector" (dict "root" .root "component" .component "role" (.role | default "")) | nindent 4 }}
  policyTypes:
    - Ingress
    - Egress
{{- end -}}
