{{/* Helpers of the Spark side: the drivers' and executors' identities, and what the drivers'
admission policy lets their pods hold. */}}

{{/*
ServiceAccount of the drivers: spark.serviceAccount, or the chart's own `spark-driver`
(spark/rbac.yaml). The executors' pods are created by this account.
*/}}
{{- define "ticket-pipeline.spark.driverServiceAccount" -}}
{{- .Values.spark.serviceAccount | default (include "ticket-pipeline.componentName" "spark-driver") -}}
{{- end -}}

{{/*
ServiceAccount of the executors: always the chart's own `spark-executor`, without a token.
*/}}
{{- define "ticket-pipeline.spark.executorServiceAccount" -}}
{{- include "ticket-pipeline.componentName" "spark-executor" -}}
{{- end -}}

{{/*
The Secret keys the executors read through env secretKeyRefs, as a JSON list of "secret/key"
(neither a Secret's name nor a key may hold a "/"): taken from the very helpers that render the
executors' env (the writer's PostgreSQL password, the Kafka SASL password when SASL is on).
Usage: {{ include "ticket-pipeline.spark.executorSecretKeys" . | fromJsonArray }}
*/}}
{{- define "ticket-pipeline.spark.executorSecretKeys" -}}
{{- $env := concat (include "ticket-pipeline.writerPasswordEnv" . | fromYamlArray) (include "ticket-pipeline.kafkaPasswordEnv" . | fromYamlArray) -}}
{{- $keys := list -}}
{{- range $env -}}
{{- with .valueFrom -}}{{- with .secretKeyRef -}}
{{- $keys = append $keys (printf "%s/%s" .name .key) -}}
{{- end -}}{{- end -}}
{{- end -}}
{{- $keys | uniq | toJson -}}
{{- end -}}

{{/*
The Secret volumes the executors mount, as a JSON object of Secret name to the keys the volume
may project (its items): the Kafka CA's volume of kafkaCaVolume when the clients trust a CA of
their own, else none.
Usage: {{ include "ticket-pipeline.spark.executorSecretVolumes" . | fromJson }}
*/}}
{{- define "ticket-pipeline.spark.executorSecretVolumes" -}}
{{- $volumes := dict -}}
{{- range (include "ticket-pipeline.kafkaCaVolume" . | fromYamlArray) -}}
{{- with .secret -}}
{{- $keys := list -}}
{{- range .items }}{{ $keys = append $keys .key }}{{ end -}}
{{- $_ := set $volumes .secretName (concat (get $volumes .secretName | default list) $keys | uniq) -}}
{{- end -}}
{{- end -}}
{{- $volumes | toJson -}}
{{- end -}}

{{/*
Name of the cluster-scoped ValidatingAdmissionPolicy and its binding: the release's name and
namespace, so that releases in two namespaces never share one. Kept a DNS label of at most 63
characters: a longer one is cut and ends with a hash of namespace/release.
*/}}
{{- define "ticket-pipeline.spark.admissionPolicyName" -}}
{{- $name := printf "%s-%s-spark-driver-pods" .Release.Name .Release.Namespace -}}
{{- if gt (len $name) 63 -}}
{{- $name = printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (printf "%s/%s" .Release.Namespace .Release.Name | sha256sum | trunc 8) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/*
The pod template of a driver or of the executors (SparkApplication driver.template and
executor.template): only its Spark container's ephemeral-storage request and limit, which no
SparkApplication field sets. Spark keeps a template container's resources and adds its own cpu
and memory to them; the operator names the containers spark-kubernetes-driver and
spark-kubernetes-executor.
Usage: {{- include "ticket-pipeline.spark.podTemplate" (dict "container" "spark-kubernetes-driver" "role" $values.driver) | nindent 4 }}
*/}}
{{- define "ticket-pipeline.spark.podTemplate" -}}
template:
  spec:
    containers:
      - name: {{ .container }}
        resources:
          requests:
            ephemeral-storage: {{ .role.ephemeralStorageRequest }}
          limits:
            ephemeral-storage: {{ .role.ephemeralStorageLimit }}
{{- end -}}
