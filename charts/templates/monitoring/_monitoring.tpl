{{/* Helpers of the monitoring objects: what serves metrics and how it is scraped. */}}

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
