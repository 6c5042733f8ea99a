{{/* Helpers of the Kafka side: which broker the clients use. */}}

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
